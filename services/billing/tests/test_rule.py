"""The capped-fee rule (DESIGN section 7) as pure functions: exact numbers, no I/O."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D

import pytest

from unified_billing import domain
from unified_billing.domain import (
    Cap,
    ChargeLine,
    DocumentKind,
    Fact,
    FactKind,
    FeeAt,
    FeeRow,
    Held,
    IssuedDocument,
    Period,
    RatePublication,
    RateSnapshot,
)

US, DE, FR, JP, UK, IN = (
    "ATVPDKIKX0DER",
    "A1PA6795UKMFR9",
    "A13V1IB3VIYZZH",
    "A1VC38T7YXB528",
    "A1F83G8C2ARO7P",
    "A21TJRUUN4KGV",
)
CAP = Cap(D("39.99"), "USD")
SCHEDULE = [
    FeeRow(1, US, "USD", D("39.99"), dt.date(2000, 1, 1)),
    FeeRow(2, DE, "EUR", D("39.00"), dt.date(2000, 1, 1)),
    FeeRow(3, FR, "EUR", D("39.00"), dt.date(2000, 1, 1)),
    FeeRow(4, JP, "JPY", D("4900"), dt.date(2000, 1, 1)),
    FeeRow(5, UK, "GBP", D("25.00"), dt.date(2000, 1, 1)),
    FeeRow(6, IN, "INR", D("0"), dt.date(2000, 1, 1)),
]
AMAZON_RATES = {"USD": D("1.2320"), "JPY": D("136.64"), "GBP": D("0.85")}


def at(day: str, time: str = "10:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}:00+00:00")


def subscribed(mp: str, start: str, *, listings: str | None = None, seq: int = 0) -> list[Fact]:
    facts = [Fact(mp, FactKind.SUBSCRIPTION_STARTED, at(start), seq)]
    facts.append(Fact(mp, FactKind.LISTINGS_ACTIVATED, at(listings or start), seq + 1))
    return facts


def pub(day: str, rates: dict[str, D] | None = None, revision: int = 1) -> RatePublication:
    return RatePublication(dt.date.fromisoformat(day), revision, rates or AMAZON_RATES, f"ECB rev {revision}")


def test_amazon_worked_example_gives_exactly_12_09_usd_11_79_eur_1482_jpy() -> None:
    rates = RateSnapshot(dt.date(2026, 9, 30), "ECB", {"USD": D("1.2320"), "JPY": D("136.64")})
    lines = domain.capped_charges(
        [FeeAt(US, "USD", D("39.99")), FeeAt(DE, "EUR", D("39.00")), FeeAt(JP, "JPY", D("4900"))], CAP, rates
    )
    assert [(line.currency, line.amount) for line in lines] == [
        ("USD", D("12.09")),
        ("EUR", D("11.79")),
        ("JPY", D("1482")),
    ]
    assert str(lines[0].ratio).startswith("0.302454")
    assert [line.discount for line in lines] == [D("27.90"), D("27.21"), D("3418")]
    assert lines[2].fx_rate == D("136.64") and lines[2].fx_rate_date == dt.date(2026, 9, 30)


def test_worked_example_through_the_whole_period_computation() -> None:
    facts = [
        *subscribed(US, "2026-07-01"),
        *subscribed(DE, "2026-07-02", seq=2),
        *subscribed(JP, "2026-07-03", seq=4),
    ]
    charges = domain.compute_period(
        Period(2026, 9), facts, home_marketplace_id=US, schedule=SCHEDULE, publications=[pub("2026-09-30")], cap=CAP
    )
    assert {line.currency: line.amount for line in charges.lines} == {
        "USD": D("12.09"),
        "EUR": D("11.79"),
        "JPY": D("1482"),
    }
    assert not charges.first_period


def test_sum_within_the_cap_pays_full_fees_without_discount() -> None:
    rates = RateSnapshot(dt.date(2026, 9, 30), "ECB", AMAZON_RATES)
    # 25 GBP = 25 / 0.85 * 1.2320 = 36.24 USD <= 39.99: the full fee, no discount.
    lines = domain.capped_charges([FeeAt(UK, "GBP", D("25.00"))], CAP, rates)
    assert lines[0].amount == D("25.00") and lines[0].discount == 0 and lines[0].ratio == 1


def test_each_line_is_its_exact_share_rounded_down_once() -> None:
    # 40 EUR at 1.9995 USD per EUR is 79.98 USD: S = 39.99 + 79.98 = 119.97 = 3 x cap, so r = 1/3 exactly and
    # US pays 39.99 / 3 = 13.33. A ratio truncated first (0.3333333333) would give 13.3299999... -> 13.32.
    rates = RateSnapshot(dt.date(2026, 9, 30), "ECB", {"USD": D("1.9995")})
    lines = domain.capped_charges([FeeAt(US, "USD", D("39.99")), FeeAt(DE, "EUR", D("40.00"))], CAP, rates)
    assert [(line.currency, line.amount, line.discount) for line in lines] == [
        ("USD", D("13.33"), D("26.66")),
        ("EUR", D("13.33"), D("26.67")),
    ]
    assert lines[0].ratio == D("0.3333333333")  # recorded for display, truncated to 10 decimals


def test_first_period_is_one_charge_in_the_home_marketplace_only() -> None:
    facts = [*subscribed(UK, "2026-09-02"), *subscribed(US, "2026-09-03", seq=2), *subscribed(JP, "2026-09-04", seq=4)]
    charges = domain.compute_period(
        Period(2026, 9), facts, home_marketplace_id=UK, schedule=SCHEDULE, publications=[pub("2026-09-30")], cap=CAP
    )
    assert charges.first_period
    assert [(line.marketplace_id, line.amount, line.discount) for line in charges.lines] == [(UK, D("25.00"), 0)]
    # Home DE: 39 EUR is 48.05 USD, above the cap: at most 39.99 USD = 39.99 / 1.2320 EUR = 32.45 EUR.
    charges = domain.compute_period(
        Period(2026, 9),
        facts + subscribed(DE, "2026-09-05", seq=8),
        home_marketplace_id=DE,
        schedule=SCHEDULE,
        publications=[pub("2026-09-30")],
        cap=CAP,
    )
    assert [(line.marketplace_id, line.amount, line.discount) for line in charges.lines] == [
        (DE, D("32.45"), D("6.55"))
    ]


def test_first_period_charge_never_exceeds_the_cap_converted_into_the_home_currency() -> None:
    facts = subscribed(JP, "2026-09-02")
    small_cap = Cap(D("20.00"), "USD")  # 20 USD = 20 / 1.2320 * 136.64 = 2218.18... JPY -> 2218
    charges = domain.compute_period(
        Period(2026, 9),
        facts,
        home_marketplace_id=JP,
        schedule=SCHEDULE,
        publications=[pub("2026-09-30")],
        cap=small_cap,
    )
    (line,) = charges.lines
    assert (line.amount, line.discount, line.fee) == (D("2218"), D("2682"), D("4900"))


def test_first_period_without_home_marketplace_is_held() -> None:
    with pytest.raises(Held, match="home marketplace"):
        domain.compute_period(
            Period(2026, 9),
            subscribed(US, "2026-09-02"),
            home_marketplace_id=None,
            schedule=SCHEDULE,
            publications=[],
            cap=CAP,
        )


def test_marketplace_without_active_listings_all_month_is_not_billed_one_active_a_single_day_is() -> None:
    facts = [
        *subscribed(US, "2026-08-01"),
        Fact(UK, FactKind.SUBSCRIPTION_STARTED, at("2026-08-01"), 10),  # subscribed, never listed
        Fact(DE, FactKind.SUBSCRIPTION_STARTED, at("2026-08-01"), 11),
        Fact(DE, FactKind.LISTINGS_ACTIVATED, at("2026-08-05"), 12),
        Fact(DE, FactKind.LISTINGS_DEACTIVATED, at("2026-08-20"), 13),  # none in September ...
        Fact(DE, FactKind.LISTINGS_ACTIVATED, at("2026-09-30", "23:59"), 14),  # ... except its very last minute
        Fact(FR, FactKind.SUBSCRIPTION_STARTED, at("2026-08-01"), 15),
        Fact(FR, FactKind.LISTINGS_ACTIVATED, at("2026-08-01"), 16),
        Fact(FR, FactKind.LISTINGS_DEACTIVATED, at("2026-09-01", "00:00"), 17),  # ended at midnight: no Sept day
    ]
    fees = {r.marketplace_id: r.fee for r in SCHEDULE}
    billable = domain.billable_marketplaces(facts, dt.date(2026, 9, 1), dt.date(2026, 9, 30), fees)
    assert billable == [DE, US] or sorted(billable) == sorted([DE, US])
    assert UK not in billable and FR not in billable


def test_subscription_and_listings_must_be_active_on_a_common_day() -> None:
    facts = [
        Fact(DE, FactKind.SUBSCRIPTION_STARTED, at("2026-09-01"), 1),
        Fact(DE, FactKind.LISTINGS_ACTIVATED, at("2026-09-02"), 2),
        Fact(DE, FactKind.SUBSCRIPTION_ENDED, at("2026-09-10"), 3),  # also ends listings (regions' rule)
        Fact(DE, FactKind.SUBSCRIPTION_STARTED, at("2026-10-05"), 4),
    ]
    fees = {DE: D("39")}
    assert domain.billable_marketplaces(facts, dt.date(2026, 9, 1), dt.date(2026, 9, 30), fees) == [DE]
    assert domain.billable_marketplaces(facts, dt.date(2026, 10, 1), dt.date(2026, 10, 31), fees) == []


def test_zero_fee_marketplace_is_never_billable() -> None:
    facts = subscribed(IN, "2026-08-01")
    assert domain.billable_marketplaces(facts, dt.date(2026, 9, 1), dt.date(2026, 9, 30), {IN: D("0")}) == []


def test_late_fact_sorts_into_its_timeline() -> None:
    facts = [*subscribed(DE, "2026-08-01"), Fact(DE, FactKind.LISTINGS_DEACTIVATED, at("2026-08-31"), seq=99)]
    fees = {DE: D("39")}
    assert domain.billable_marketplaces(facts, dt.date(2026, 9, 1), dt.date(2026, 9, 30), fees) == []


def test_fee_in_force_on_the_last_day_of_the_period() -> None:
    schedule = [
        *SCHEDULE,
        FeeRow(9, DE, "EUR", D("45.00"), dt.date(2026, 9, 30)),
        FeeRow(10, FR, "EUR", D("50"), dt.date(2026, 10, 1)),
    ]
    assert domain.fee_in_force(schedule, DE, dt.date(2026, 9, 30)).fee == D("45.00")  # type: ignore[union-attr]
    assert domain.fee_in_force(schedule, DE, dt.date(2026, 9, 29)).fee == D("39.00")  # type: ignore[union-attr]
    assert domain.fee_in_force(schedule, FR, dt.date(2026, 9, 30)).fee == D("39.00")  # type: ignore[union-attr]


def test_rates_of_the_last_day_or_the_last_published_before_it() -> None:
    # 2026-10-31 is a Saturday: Friday's rates are final.
    snap = domain.select_rates([pub("2026-10-29"), pub("2026-10-30", {"USD": D("1.1")})], dt.date(2026, 10, 31))
    assert snap.date == dt.date(2026, 10, 30) and snap.rate("USD") == D("1.1")
    # 2026-09-30 is a Wednesday: Tuesday's rates are not final until Wednesday's (or a later day's) arrive.
    with pytest.raises(Held, match="not published yet"):
        domain.select_rates([pub("2026-09-29")], dt.date(2026, 9, 30))
    later = domain.select_rates([pub("2026-09-29"), pub("2026-10-01")], dt.date(2026, 9, 30))
    assert later.date == dt.date(2026, 9, 29)  # a holiday: ECB moved on, so the 29th is the last one
    assert domain.select_rates([pub("2026-09-29")], dt.date(2026, 9, 30), final=False).date == dt.date(2026, 9, 29)
    with pytest.raises(Held, match="no FX rates"):
        domain.select_rates([], dt.date(2026, 9, 30))


def test_highest_revision_of_a_day_wins() -> None:
    snap = domain.select_rates(
        [pub("2026-09-30", {"USD": D("2")}, 2), pub("2026-09-30", {"USD": D("1")}, 1)], dt.date(2026, 9, 30)
    )
    assert snap.rate("USD") == D("2")


def test_missing_currency_holds_the_period() -> None:
    with pytest.raises(Held, match="no SEK rate"):
        domain.capped_charges(
            [FeeAt(US, "USD", D("39.99")), FeeAt("A2NODRKZP88ZB9", "SEK", D("449"))],
            CAP,
            RateSnapshot(dt.date(2026, 9, 30), "ECB", AMAZON_RATES),
        )


def test_egp_without_a_rate_source_holds_the_egypt_line_with_its_reason() -> None:
    """ECB publishes no EGP rate: with no second source the EG line (and so S) is unknown, never guessed."""
    with pytest.raises(Held, match=r"EG line \(800.00 EGP\) held: no EGP rate"):
        domain.capped_charges(
            [FeeAt(US, "USD", D("39.99")), FeeAt("ARBP9OOSHTCHU", "EGP", D("800.00"))],
            CAP,
            RateSnapshot(dt.date(2026, 9, 30), "ECB", {**AMAZON_RATES, "ZAR": D("20.1")}),
        )
    (za,) = [
        line
        for line in domain.capped_charges(
            [FeeAt(US, "USD", D("39.99")), FeeAt("AE08WJ6YKNBMC", "ZAR", D("400.00"))],
            CAP,
            RateSnapshot(dt.date(2026, 9, 30), "ECB", {**AMAZON_RATES, "ZAR": D("20.1")}),
        )
        if line.currency == "ZAR"
    ]
    assert za.amount < D("400.00")


def test_only_cap_currency_lines_need_no_rates() -> None:
    (line,) = domain.capped_charges([FeeAt(US, "USD", D("39.99"))], CAP, None)
    assert line.amount == D("39.99")


def test_invoice_ids_are_deterministic_per_account_period_currency() -> None:
    account = uuid.UUID("6f1d7f0e-7a8e-4c55-9f00-000000000001")
    a = domain.invoice_id(account, Period(2026, 9), "EUR")
    assert a == domain.invoice_id(account, Period(2026, 9), "EUR")
    assert a.startswith("INV-2026-09-EUR-")
    assert (
        len(
            {a, domain.invoice_id(account, Period(2026, 9), "USD"), domain.invoice_id(account, Period(2026, 10), "EUR")}
        )
        == 3
    )
    assert domain.invoice_id(uuid.uuid4(), Period(2026, 9), "EUR") != a


def _line(mp: str, currency: str, amount: str) -> ChargeLine:
    return ChargeLine(mp, currency, D("39"), D("1"), D(amount), D("0"))


def test_plan_documents_issues_the_invoice_once_then_nothing() -> None:
    account = uuid.uuid4()
    charges = domain.PeriodCharges(Period(2026, 10), (_line(DE, "EUR", "9.85"), _line(FR, "EUR", "9.85")))
    (doc,) = domain.plan_documents(account, charges, [], reason="late")
    assert doc.kind == DocumentKind.INVOICE and doc.total == D("19.70")
    issued = [IssuedDocument(doc.document_id, doc.kind, "EUR", {DE: D("9.85"), FR: D("9.85")})]
    assert domain.plan_documents(account, charges, issued, reason="late") == []


def test_plan_documents_credits_an_excess_and_supplements_a_shortfall_never_editing() -> None:
    account = uuid.uuid4()
    period = Period(2026, 10)
    issued = [
        IssuedDocument(domain.invoice_id(account, period, "EUR"), DocumentKind.INVOICE, "EUR", {DE: D("9.85")}),
        IssuedDocument(domain.invoice_id(account, period, "JPY"), DocumentKind.INVOICE, "JPY", {JP: D("1237")}),
    ]
    now_due = domain.PeriodCharges(period, (_line(DE, "EUR", "12.26"),))
    docs = {d.currency: d for d in domain.plan_documents(account, now_due, issued, reason="late events")}
    assert docs["EUR"].kind == DocumentKind.SUPPLEMENTARY and docs["EUR"].total == D("2.41")
    assert docs["EUR"].document_id == domain.invoice_id(account, period, "EUR") + "-S1"
    assert docs["JPY"].kind == DocumentKind.CREDIT_NOTE and docs["JPY"].total == D("1237")
    assert docs["JPY"].invoice_id == domain.invoice_id(account, period, "JPY")
    after = [
        *issued,
        *(
            IssuedDocument(d.document_id, d.kind, d.currency, {ln.marketplace_id: ln.amount for ln in d.lines})
            for d in docs.values()
        ),
    ]
    assert domain.plan_documents(account, now_due, after, reason="late events") == []


def test_period_parsing_and_bounds() -> None:
    p = Period.parse("2026-12")
    assert (p.first_day, p.last_day, str(p.next()), str(p.prev())) == (
        dt.date(2026, 12, 1),
        dt.date(2026, 12, 31),
        "2027-01",
        "2026-11",
    )
    assert Period.parse("2028-02").last_day == dt.date(2028, 2, 29)
    for bad in ("2026-13", "2026-9", "26-09", "x"):
        with pytest.raises(ValueError):
            Period.parse(bad)
