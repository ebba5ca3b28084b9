"""Pure rules: participation fold, conversion and exact totals, reply deadlines, late rate, page tokens."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unified_seller_view import domain, overview_rules, reply_wait_rules
from unified_shared.thread_timeline import Entry, EntryKind

from .support import DE, FR, JP, US

T0 = datetime(2026, 10, 20, 9, tzinfo=UTC)


def test_participation_fold_uses_effective_time_not_arrival() -> None:
    changes = [
        domain.ParticipationChange("ParticipationOpened", T0, 1, "a"),
        domain.ParticipationChange("SubscriptionStarted", T0, 2, "b"),
        domain.ParticipationChange("ParticipationSuspended", T0 + timedelta(days=3), 4, "d", "docs"),
        # recorded last, effective before the suspension
        domain.ParticipationChange("SubscriptionEnded", T0 + timedelta(days=2), 5, "e"),
    ]
    state = domain.fold_participation(reversed(changes))
    assert (state.participation, state.subscription, state.listings) == ("suspended", "ended", "inactive")
    assert state.suspended_reason == "docs"
    assert state.last_change_at == T0 + timedelta(days=3)


def _rates(day: date) -> dict[str, overview_rules.Rate]:
    return {
        "USD": overview_rules.Rate("USD", day, Decimal("1.1592")),
        "JPY": overview_rules.Rate("JPY", day, Decimal("178.56")),
        "GBP": overview_rules.Rate("GBP", day, Decimal("0.85815")),
    }


def test_conversion_rounds_half_even_to_the_reporting_minor_unit() -> None:
    usd = overview_rules.Rate("USD", date(2026, 9, 11), Decimal("1.1592"))
    jpy = overview_rules.Rate("JPY", date(2026, 9, 11), Decimal("178.56"))
    assert overview_rules.convert(Decimal("10.00"), usd, jpy, "JPY") == Decimal("1540")  # 1540.37...
    assert overview_rules.convert(Decimal("1234"), jpy, overview_rules.base_rate(), "EUR") == Decimal("6.91")
    assert overview_rules.convert(Decimal("19.99"), overview_rules.base_rate(), usd, "USD") == Decimal("23.17")


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([US, DE, FR, JP]), amounts, st.sampled_from(["Shipped", "Canceled", "Pending"])),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(["USD", "EUR", "JPY", "GBP"]),
)
def test_total_is_exactly_the_sum_of_the_marketplaces(rows: list[tuple[str, Decimal, str]], reporting: str) -> None:
    currency = {US: "USD", DE: "EUR", FR: "EUR", JP: "JPY"}
    day = date(2026, 9, 11)
    orders = [
        overview_rules.OrderFigures(
            m, status, currency[m], a.quantize(Decimal(1)) if m == JP else a, 1, day, ((currency[m], Decimal("0.01")),)
        )
        for m, a, status in rows
    ]
    overview = overview_rules.build_overview(orders, reporting, lambda c, d: _rates(d).get(c))
    q = overview_rules.minor(reporting)
    parts = sum((f.gross_reporting for f in overview.marketplaces.values()), Decimal(0))
    assert overview.total.gross_reporting == parts
    for f in overview.marketplaces.values():
        assert f.gross_reporting == f.gross_reporting.quantize(q)
    shown = overview.total.to_json(reporting)
    assert Decimal(shown["gross_sales"]["reporting"]) == sum(
        (Decimal(f.to_json(reporting)["gross_sales"]["reporting"]) for f in overview.marketplaces.values()), Decimal(0)
    )
    assert overview.total.orders == len(rows)


def test_a_currency_without_rate_is_left_unconverted_and_marked() -> None:
    orders = [
        overview_rules.OrderFigures("A2VIGQ35RCS4UG", "Shipped", "AED", Decimal("150.00"), 1, date(2026, 9, 11)),
        overview_rules.OrderFigures(US, "Shipped", "USD", Decimal("10.00"), 1, date(2026, 9, 11)),
    ]
    overview = overview_rules.build_overview(orders, "EUR", lambda c, d: _rates(d).get(c))
    ae = overview.marketplaces["A2VIGQ35RCS4UG"].to_json("EUR")
    assert ae["conversion"] == "none" and ae["unconverted"]["gross_sales"] == {"AED": "150.00"}
    assert ae["gross_sales"]["reporting"] == "0.00"
    assert overview.total.conversion() == "partial"


def _cycle(started: datetime, closed: datetime | None = None) -> reply_wait_rules.Cycle:
    return reply_wait_rules.Cycle(
        "t", US, started, reply_wait_rules.deadline_for(started), closed, "reply" if closed else None
    )


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (timedelta(hours=19, minutes=59), "on_track"),
        (timedelta(hours=20), "due_soon"),
        (timedelta(hours=23, minutes=59), "due_soon"),
        (timedelta(hours=24), "due_soon"),
        (timedelta(hours=24, minutes=1), "overdue"),
    ],
)
def test_deadline_edges(after: timedelta, expected: str) -> None:
    assert reply_wait_rules.classify(_cycle(T0), T0 + after) == expected


def test_late_rate_counts_waits_whose_deadline_fell_in_the_window() -> None:
    cycles = [
        _cycle(T0 - timedelta(days=3), T0 - timedelta(days=3) + timedelta(hours=25)),  # late
        _cycle(T0 - timedelta(days=5), T0 - timedelta(days=5) + timedelta(hours=2)),  # on time
        _cycle(T0 - timedelta(days=10)),  # never answered: late
        _cycle(T0 - timedelta(hours=2)),  # deadline ahead: not counted yet
        _cycle(T0 - timedelta(days=2), T0 + timedelta(hours=5)),  # answered after as_of: late at as_of
    ]
    week = reply_wait_rules.late_response_rate(cycles, T0, 7)
    assert (week.due, week.late, week.rate) == (3, 2, Decimal("0.6667"))
    month = reply_wait_rules.late_response_rate(cycles, T0, 30)
    assert (month.due, month.late) == (4, 3)
    assert reply_wait_rules.late_response_rate([], T0, 7).rate is None


def _entry(kind: EntryKind, entry_id: str, hours: float) -> Entry:
    return Entry(entry_id, kind, T0 + timedelta(hours=hours))


def test_waits_follow_the_timeline_not_the_arrival_order() -> None:
    # Buyer 09:00, reply 11:00, then a buyer message dated 10:00: the 11:00 reply answered both.
    backdated_buyer = [_entry("buyer", "m1", 0), _entry("reply", "r1", 2), _entry("buyer", "m2", 1)]
    assert reply_wait_rules.reply_waits(backdated_buyer) == [
        reply_wait_rules.Wait("m1", T0, T0 + timedelta(hours=24), T0 + timedelta(hours=2), "reply")
    ]
    # Buyer 09:00, buyer 12:00, then a mark dated 11:00: it closed the first wait; 12:00 starts a new one.
    late_mark = [_entry("buyer", "m1", 0), _entry("buyer", "m2", 3), _entry("mark", "mark:t:x", 2)]
    assert reply_wait_rules.reply_waits(late_mark) == [
        reply_wait_rules.Wait("m1", T0, T0 + timedelta(hours=24), T0 + timedelta(hours=2), "no_response"),
        reply_wait_rules.Wait("m2", T0 + timedelta(hours=3), T0 + timedelta(hours=27), None, None),
    ]
    # A mark with nothing waiting changes nothing; a reply stamped with a buyer message's instant answers it.
    assert reply_wait_rules.reply_waits(
        [_entry("mark", "mark:t:a", -1), _entry("buyer", "m1", 0), _entry("reply", "r", 0)]
    ) == [reply_wait_rules.Wait("m1", T0, T0 + timedelta(hours=24), T0, "reply")]
    # Nothing but a reply (its thread's buyer message not arrived yet): no wait.
    assert reply_wait_rules.reply_waits([_entry("reply", "r", 0)]) == []


@settings(deadline=None)  # a loaded CI machine must not turn a slow example into a failure
@given(
    st.lists(
        st.tuples(st.sampled_from(["buyer", "reply", "mark"]), st.integers(min_value=0, max_value=6)),
        min_size=1,
        max_size=8,
    ),
    st.randoms(use_true_random=False),
)
def test_waits_do_not_depend_on_the_order_entries_arrive_in(raw: list[tuple[str, int]], rnd: Any) -> None:
    entries = [
        Entry(f"{kind}-{i}", kind, T0 + timedelta(hours=h))  # type: ignore[arg-type]
        for i, (kind, h) in enumerate(raw)
    ]
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    waits = reply_wait_rules.reply_waits(entries)
    assert reply_wait_rules.reply_waits(shuffled) == waits
    for w in waits:  # a wait closes at or after it started, at the first reply or mark from then on
        assert w.closed_at is None or w.closed_at >= w.started_at
        answers = [e.at for e in entries if e.kind != "buyer" and e.at >= w.started_at]
        assert w.closed_at == (min(answers) if answers else None)


def test_page_token_is_bound_to_its_filters() -> None:
    filters = {"m": [DE], "s": None}
    token = domain.encode_page_token(T0, "302-1234567-1234567", filters)
    assert domain.decode_page_token(token, filters) == (T0, "302-1234567-1234567")
    with pytest.raises(domain.BadPageToken):
        domain.decode_page_token(token, {"m": [US], "s": None})
    with pytest.raises(domain.BadPageToken):
        domain.decode_page_token("not-a-token", filters)


def test_scope_narrows_requests_and_accepts_codes() -> None:
    assert domain.visible_marketplaces([DE, "FR"], None) == [DE, FR]
    assert domain.visible_marketplaces([DE, "FR"], [US]) == []
    assert domain.visible_marketplaces("*", None) is None
    assert domain.normalize_marketplaces(["UK", "gb", "DE,FR"]) == ["A1F83G8C2ARO7P", DE, FR]
