"""The view fed with real contract events (event store + outbox relay -> Kafka -> shared consumer)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaProducer

from unified_shared.envelope import Envelope
from unified_shared.kafka import make_producer
from unified_shared.testing import TopicWatcher
from unified_shared.topics import ORDERS

from .scenario import CURRENCY, Scenario, base_scenario, fx_events, rate_book
from .support import AE, DE, FR, JP, US, publisher, running_view, utc, view_of


def _market(overview: dict[str, Any], marketplace_id: str) -> dict[str, Any]:
    found = [m for m in overview["marketplaces"] if m["marketplace_id"] == marketplace_id]
    assert len(found) == 1, [m["marketplace_id"] for m in overview["marketplaces"]]
    return found[0]


async def test_overview_equals_independent_sums_in_local_and_reporting_currency(make_db, kafka_bootstrap) -> None:
    s = base_scenario()
    book = rate_book()
    async with view_of(make_db, kafka_bootstrap, *fx_events(), *s.events) as (view, _):
        for currency in ("USD", "EUR", "JPY"):
            got = await view.json(s.account_id, "overview", currency=currency)
            expected = s.expected(book, currency)
            assert {m["marketplace_id"] for m in got["marketplaces"]} == set(expected)
            parts_gross = parts_refunds = Decimal(0)
            for marketplace_id, exp in expected.items():
                m = _market(got, marketplace_id)
                local = CURRENCY[marketplace_id]
                assert m["orders_by_status"] == dict(exp["by_status"])
                assert m["units"] == exp["units"]
                assert Decimal(m["gross_sales"]["local"][local]) == exp["gross_local"]
                assert Decimal(m["refunds"]["local"].get(local, "0")) == exp["refunds_local"]
                assert Decimal(m["gross_sales"]["reporting"]) == exp["gross"], (currency, marketplace_id)
                assert Decimal(m["refunds"]["reporting"]) == exp["refunds"]
                assert m["unconverted"]["orders"] == exp["unconverted"]
                parts_gross += Decimal(m["gross_sales"]["reporting"])
                parts_refunds += Decimal(m["refunds"]["reporting"])
            total = got["total"]
            assert Decimal(total["gross_sales"]["reporting"]) == parts_gross
            assert Decimal(total["refunds"]["reporting"]) == parts_refunds
            assert Decimal(total["net_sales"]["reporting"]) == parts_gross - parts_refunds
            assert total["orders"] == len(s.orders)
            # AED has no ECB rate: reported unconverted and marked, never guessed.
            ae = _market(got, AE)
            assert ae["conversion"] == "none"
            assert ae["unconverted"]["gross_sales"] == {"AED": "150.00"}
            assert total["unconverted"]["gross_sales"] == {"AED": "150.00"}
            assert total["conversion"] == "partial"
        # The right day's rate: the Saturday order of 2026-09-12 used Friday's (09-11) EUR/USD rate.
        eur = await view.json(s.account_id, "overview", currency="EUR")
        usd_rates = {r["rate_date"]: r for r in eur["fx_rates_used"] if r["currency"] == "USD"}
        assert usd_rates["2026-09-11"]["rate"] == "1.1592"
        assert "2026-09-12" in usd_rates["2026-09-11"]["used_for_purchase_days"]
        assert "2026-09-12" not in usd_rates
        # Canceled orders count by status only: no units, no sales.
        us = _market(eur, US)
        assert us["orders_by_status"] == {"Canceled": 1, "Shipped": 2}
        assert us["units"] == 3
        assert us["gross_sales"]["local"] == {"USD": "65.49"}
        assert _market(eur, JP)["gross_sales"]["local"] == {"JPY": "1234"}


async def test_status_change_and_refund_before_their_order_end_right(make_db, kafka_bootstrap) -> None:
    s = base_scenario()
    late = s.place(DE, utc(2026, 9, 14, 8), "80.00", 2, "Unshipped")
    placed = s.events.pop()  # publish the order itself last
    shipped = s.change(late, "Shipped", utc(2026, 9, 15, 9))
    refund = s.refund(late, "20.00", utc(2026, 9, 16, 9))
    async with running_view(make_db, kafka_bootstrap) as view, publisher(make_db, kafka_bootstrap) as pub:
        await pub.publish(*fx_events(), *s.events, shipped, refund)
        await view.caught_up()
        got = await view.json(s.account_id, "orders", order_id=late.amazon_order_id)
        assert got["orders"] == []  # held, not lost, not shown before its order
        await pub.publish(placed)
        await view.caught_up()
        got = await view.json(s.account_id, "orders", order_id=late.amazon_order_id)
        assert [o["order_status"] for o in got["orders"]] == ["Shipped"]
        assert [r["amount"] for r in got["orders"][0]["refunds"]] == ["20.00"]
        overview = await view.json(s.account_id, "overview", currency="EUR")
        assert Decimal(_market(overview, DE)["refunds"]["local"]["EUR"]) == Decimal("20.00")


async def test_scope_and_account_isolation(make_db, kafka_bootstrap) -> None:
    s = base_scenario()
    other = base_scenario()
    book = rate_book()
    async with running_view(make_db, kafka_bootstrap) as view, publisher(make_db, kafka_bootstrap) as pub:
        await pub.publish(*fx_events(), *s.events, *other.events)
        s.buyer_message("t-us", US, utc(2026, 9, 14, 10))
        s.buyer_message("t-de", DE, utc(2026, 9, 14, 10))
        await pub.publish(*s.events[-2:])
        await view.caught_up()
        member = view.token(
            s.account_id, role="member", permissions=["orders", "messages", "reports"], marketplaces=[DE, "FR"]
        )
        overview = await view.json(s.account_id, "overview", member, currency="USD")
        assert {m["marketplace_id"] for m in overview["marketplaces"]} == {DE, FR}
        expected = s.expected(book, "USD", visible={DE, FR})
        assert Decimal(overview["total"]["gross_sales"]["reporting"]) == sum(
            (e["gross"] for e in expected.values()), Decimal(0)
        )
        assert overview["total"]["gross_sales"]["local"] == {
            "EUR": format(sum((e["gross_local"] for e in expected.values()), Decimal(0)), "f")
        }
        assert "USD" not in overview["total"]["gross_sales"]["local"]
        # Asking for US explicitly does not widen the scope.
        narrowed = await view.json(s.account_id, "overview", member, marketplace="US")
        assert narrowed["marketplaces"] == [] and narrowed["total"]["orders"] == 0
        orders = await view.json(s.account_id, "orders", member, max_results=100)
        assert orders["orders"] and {o["marketplace_id"] for o in orders["orders"]} <= {DE, FR}
        msgs = await view.json(s.account_id, "messages", member, as_of="2026-09-14T12:00:00Z")
        assert [t["thread_id"] for t in msgs["threads"]] == ["t-de"]
        subs = await view.json(s.account_id, "subscriptions", member)
        assert {m["marketplace_id"] for m in subs["marketplaces"]} == {DE, FR}
        # Invoices follow billing's own rule: the owner's (with the billing permission), not a reports member's.
        refused = await view.get(s.account_id, "invoices", member)
        assert refused.status_code == 403 and "owner" in refused.json()["detail"]
        # The owner sees everything, including the US invoice.
        owner = await view.json(s.account_id, "invoices")
        assert sorted(i["currency"] for i in owner["invoices"]) == ["EUR", "USD"]
        # A user of another account: 404 everywhere, even with a valid token.
        stranger = view.token(other.account_id)
        for path in ("overview", "orders", "messages", "subscriptions", "invoices", "freshness"):
            response = await view.get(s.account_id, path, stranger)
            assert response.status_code == 404, path
            assert response.headers["content-type"].startswith("application/problem+json")
        assert (await view.get(s.account_id, "overview", "not-a-token")).status_code == 401


async def test_overdue_and_due_soon_edges_and_late_rate(make_db, kafka_bootstrap) -> None:
    s = base_scenario()
    t0 = utc(2026, 10, 20, 9, 0)
    s.buyer_message("edge", US, t0)
    s.buyer_message("edge", US, t0 + timedelta(hours=3))  # a second message does not restart the clock
    s.buyer_message("late-reply", DE, t0 - timedelta(days=3))
    s.reply("late-reply", DE, t0 - timedelta(days=3) + timedelta(hours=25))
    s.buyer_message("on-time", FR, t0 - timedelta(days=5))
    s.reply("on-time", FR, t0 - timedelta(days=5) + timedelta(hours=2))
    s.buyer_message("old-mark", US, t0 - timedelta(days=40))
    s.no_response("old-mark", US, t0 - timedelta(days=40) + timedelta(hours=30))
    s.buyer_message("forgotten", DE, t0 - timedelta(days=10))
    async with running_view(make_db, kafka_bootstrap, now=t0) as view, publisher(make_db, kafka_bootstrap) as pub:
        await pub.publish(*s.events)
        await view.caught_up()

        async def state(**params: Any) -> dict[str, Any]:
            got = await view.json(s.account_id, "messages", **params)
            return {t["thread_id"]: t for t in got["threads"]} | {"_": got}

        at_2359 = await state(as_of=(t0 + timedelta(hours=23, minutes=59)).isoformat())
        assert at_2359["edge"]["overdue"] is False and at_2359["edge"]["due_soon"] is True
        assert at_2359["edge"]["minutes_left"] == 1
        at_2401 = await state(as_of=(t0 + timedelta(hours=24, minutes=1)).isoformat())
        assert at_2401["edge"]["overdue"] is True and at_2401["edge"]["due_soon"] is False
        at_1959 = await state(as_of=(t0 + timedelta(hours=19, minutes=59)).isoformat())
        assert at_1959["edge"]["status"] == "on_track"
        at_2001 = await state(as_of=(t0 + timedelta(hours=20, minutes=1)).isoformat())
        assert at_2001["edge"]["status"] == "due_soon"
        # The injected clock is "now" when as_of is absent.
        view.clock.now = t0 + timedelta(hours=24, minutes=1)
        now = await state()
        assert now["edge"]["overdue"] is True
        assert now["_"]["counts"] == {"awaiting_reply": 2, "overdue": 2, "due_soon": 0}
        assert set(now) - {"_"} == {"edge", "forgotten"}
        # Late rate at t0: deadlines in the last 7 d: late-reply (late), on-time (on time); 30 d adds
        # forgotten (never answered: late); 90 d adds old-mark (marked after its deadline: late).
        rates = (await state(as_of=t0.isoformat()))["_"]["late_response_rate"]
        assert (rates["7d"]["threads_due"], rates["7d"]["late"], rates["7d"]["rate"]) == (2, 1, "0.5000")
        assert (rates["30d"]["threads_due"], rates["30d"]["late"], rates["30d"]["rate"]) == (3, 2, "0.6667")
        assert (rates["90d"]["threads_due"], rates["90d"]["late"], rates["90d"]["rate"]) == (4, 3, "0.7500")
        # Replying closes the wait: the thread no longer awaits a reply afterwards.
        s.events.clear()
        s.reply("edge", US, t0 + timedelta(hours=24, minutes=2))
        await pub.publish(*s.events)
        await view.caught_up()
        after = await state(as_of=(t0 + timedelta(hours=25)).isoformat())
        assert "edge" not in after
        before = await state(as_of=(t0 + timedelta(hours=24, minutes=1)).isoformat())
        assert before["edge"]["overdue"] is True


async def test_orders_filters_and_stable_keyset_pages(make_db, kafka_bootstrap) -> None:
    s = base_scenario()
    for i in range(7):
        s.place(FR, utc(2026, 9, 20, 10, i), f"{10 + i}.00", 1, "Shipped" if i % 2 else "Unshipped")
    async with running_view(make_db, kafka_bootstrap) as view, publisher(make_db, kafka_bootstrap) as pub:
        await pub.publish(*s.events)
        await view.caught_up()
        everything = (await view.json(s.account_id, "orders", max_results=100))["orders"]
        assert len(everything) == len(s.orders)
        keys = [(o["purchase_date"], o["amazon_order_id"]) for o in everything]
        assert keys == sorted(keys, reverse=True)
        # Page through 3 at a time; a new order placed mid-way (newer than all) shifts nothing.
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            page = await view.json(s.account_id, "orders", max_results=3, next_token=token)
            seen += [o["amazon_order_id"] for o in page["orders"]]
            pages += 1
            if pages == 2:
                s.events.clear()
                s.place(US, utc(2026, 10, 1, 0), "99.00", 1)
                await pub.publish(*s.events)
                await view.caught_up()
            token = page["next_token"]
            if token is None:
                break
        assert seen == [o["amazon_order_id"] for o in everything]
        # Filters: marketplace (code or ID), status, date range, order id; combined.
        fr_shipped = await view.json(s.account_id, "orders", marketplace="FR", status="Shipped", max_results=100)
        assert {o["marketplace_id"] for o in fr_shipped["orders"]} == {FR}
        assert {o["order_status"] for o in fr_shipped["orders"]} == {"Shipped"}
        assert len(fr_shipped["orders"]) == 3
        ranged = await view.json(
            s.account_id,
            "orders",
            purchased_after="2026-09-11T00:00:00Z",
            purchased_before="2026-09-14T00:00:00Z",
            max_results=100,
        )
        expected = {
            o.amazon_order_id for o in s.orders.values() if utc(2026, 9, 11) <= o.purchase_date < utc(2026, 9, 14)
        }
        assert {o["amazon_order_id"] for o in ranged["orders"]} == expected
        one = next(iter(s.orders.values()))
        by_id = await view.json(s.account_id, "orders", order_id=one.amazon_order_id)
        assert [o["amazon_order_id"] for o in by_id["orders"]] == [one.amazon_order_id]
        # A token is bound to its filters and cannot be forged into something else.
        first = await view.json(s.account_id, "orders", max_results=2)
        bad = await view.get(s.account_id, "orders", max_results=2, status="Shipped", next_token=first["next_token"])
        assert (bad.status_code, bad.json()["field"]) == (400, "next_token")
        garbage = await view.get(s.account_id, "orders", next_token="garbage")
        assert (garbage.status_code, garbage.json()["field"]) == (400, "next_token")
        unknown = await view.get(s.account_id, "orders", status="Lost")
        assert (unknown.status_code, unknown.json()["field"]) == (400, "status")
        # bad filters of the overview: 422 problems naming the field
        for params, field in (
            ({"currency": "ZZZ"}, "currency"),
            ({"marketplace": "XX"}, "marketplace"),
            ({"purchased_after": "2026-09-01T00:00:00"}, "purchased_after"),
        ):
            refused = await view.get(s.account_id, "overview", **params)
            assert refused.status_code == 422, (params, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["field"] == field


async def _send_raw(producer: AIOKafkaProducer, key: str, ce_type: str, value: bytes) -> uuid.UUID:
    event_id = uuid.uuid4()
    env = Envelope(
        id=event_id,
        source="/services/test",
        type=ce_type,
        time=utc(2026, 9, 20),
        subject="raw",
        partitionkey=key,
    )
    await producer.send_and_wait(ORDERS, value=value, key=key.encode(), headers=env.to_headers())
    return event_id


async def test_unknown_type_is_counted_and_skipped_and_malformed_goes_to_dlq(make_db, kafka_bootstrap) -> None:
    s = base_scenario()
    async with running_view(make_db, kafka_bootstrap) as view, publisher(make_db, kafka_bootstrap) as pub:
        producer = make_producer(kafka_bootstrap, client_id="seller-view-test-raw")
        await producer.start()
        try:
            async with TopicWatcher(kafka_bootstrap, [f"{ORDERS}.dlq"]) as dlq:
                key = str(s.account_id)
                unknown = await _send_raw(producer, key, "unifiedseller.orders.OrderTeleported.v1", b'{"x": 1}')
                broken = await _send_raw(
                    producer, key, "unifiedseller.orders.OrderPlaced.v1", b'{"account_id": "' + key.encode() + b'"}'
                )
                await pub.publish(*s.events)  # valid events after them still apply
                await view.caught_up()
                dead = await dlq.collect(lambda r: r.headers.get("ce_id") == str(broken), count=1, timeout_s=20)
        finally:
            await producer.stop()
        assert len(dead) == 1
        assert dead[0].headers["dlq_original_topic"] == ORDERS
        assert dead[0].headers["dlq_consumer"] == await view.consumer_name()
        assert "schema" in dead[0].headers["dlq_error"]
        import asyncpg

        conn = await asyncpg.connect(view.dsn)
        try:
            outcomes = dict(
                await conn.fetch(
                    "SELECT event_id, outcome FROM consumer_processed_events WHERE event_id = ANY($1::uuid[])",
                    [unknown, broken],
                )
            )
        finally:
            await conn.close()
        assert outcomes == {unknown: "unknown-type", broken: "dead-lettered"}
        overview = await view.json(s.account_id, "overview")
        assert overview["total"]["orders"] == len(s.orders)


async def test_subscriptions_invoices_and_freshness(make_db, kafka_bootstrap) -> None:
    s = base_scenario()
    from unified_shared.contracts import regions

    s.add(
        f"participation-{s.account_id}-{FR}",
        regions.ParticipationSuspended(account_id=s.account_id, marketplace_id=FR, at=utc(2026, 9, 20), reason="docs"),
    )
    # Backdated: effective before the suspension, recorded after it.
    s.add(
        f"participation-{s.account_id}-{FR}",
        regions.SubscriptionEnded(account_id=s.account_id, marketplace_id=FR, at=utc(2026, 9, 19)),
    )
    async with running_view(make_db, kafka_bootstrap) as view, publisher(make_db, kafka_bootstrap) as pub:
        await pub.publish(*s.events)
        await view.caught_up()
        subs = {m["code"]: m for m in (await view.json(s.account_id, "subscriptions"))["marketplaces"]}
        assert set(subs) == {"US", "DE", "FR", "JP", "AE"}
        assert (subs["DE"]["participation"], subs["DE"]["subscription"], subs["DE"]["listings"]) == (
            "open",
            "active",
            "active",
        )
        assert (subs["FR"]["participation"], subs["FR"]["subscription"]) == ("suspended", "ended")
        assert subs["FR"]["suspended_reason"] == "docs"
        assert subs["FR"]["last_change_at"].startswith("2026-09-20")
        invoices = (await view.json(s.account_id, "invoices"))["invoices"]
        eur = next(i for i in invoices if i["currency"] == "EUR")
        assert eur["total"] == "23.58" and eur["partial"] is False
        assert [line["marketplace_id"] for line in eur["lines"]] == [DE, FR]
        # A reports member, even scoped to a marketplace on the invoice, does not see invoices (billing's rule).
        de_only = view.token(s.account_id, role="member", permissions=["reports"], marketplaces=[DE])
        assert (await view.get(s.account_id, "invoices", de_only)).status_code == 403
        fresh = await view.json(s.account_id, "freshness")
        assert fresh["generation"] == 1
        assert fresh["newest_event_time"] is not None
        assert fresh["topics"]["orders.orders.v1"]["newest_event_time"] is not None
        assert fresh["lag_known"] is True and isinstance(fresh["total_lag"], int)


def _out_of_order_threads(s: Scenario, t0: datetime, *, arrival: bool) -> None:
    """Three threads whose last event is dated before an entry that was recorded earlier (the messages service
    accepts these: its thread state is computed from the timeline). ``arrival=False`` publishes the very same
    timeline in time order."""
    # Buyer 10:00, reply 12:00, then a buyer message dated 11:00: the 12:00 reply answered it (replied).
    # Buyer 10:00, buyer 13:00, then a mark dated 12:00: the mark closed the first wait; 13:00 waits since.
    # Buyer 10:00, buyer 14:00, then a reply dated 12:00: same with a reply; 14:00 waits since.
    timelines: dict[str, list[tuple[str, timedelta]]] = {
        "backdated-buyer": [("buyer", timedelta(0)), ("reply", timedelta(hours=2)), ("buyer", timedelta(hours=1))],
        "late-mark": [("buyer", timedelta(0)), ("buyer", timedelta(hours=3)), ("mark", timedelta(hours=2))],
        "late-reply": [("buyer", timedelta(0)), ("buyer", timedelta(hours=4)), ("reply", timedelta(hours=2))],
    }
    steps = [(thread, kind, t0 + offset) for thread, entries in timelines.items() for kind, offset in entries]
    if not arrival:
        steps.sort(key=lambda step: step[2])
    add = {"buyer": s.buyer_message, "reply": s.reply, "mark": s.no_response}
    for thread, kind, at in steps:
        add[kind](thread, DE, at)


async def test_out_of_order_entries_give_the_same_waits_as_time_order(make_db, kafka_bootstrap) -> None:
    t0 = utc(2026, 10, 20, 10, 0)
    in_order, out_of_order = Scenario(uuid.uuid4()), Scenario(uuid.uuid4())
    for s, arrival in ((in_order, False), (out_of_order, True)):
        s.register()
        _out_of_order_threads(s, t0, arrival=arrival)
    async with running_view(make_db, kafka_bootstrap, now=t0) as view, publisher(make_db, kafka_bootstrap) as pub:
        await pub.publish(*in_order.events, *out_of_order.events)
        await view.caught_up()

        async def both(as_of: datetime) -> dict[str, Any]:
            a = await view.json(in_order.account_id, "messages", as_of=as_of.isoformat())
            b = await view.json(out_of_order.account_id, "messages", as_of=as_of.isoformat())
            assert b == a, as_of  # the same threads, deadlines, statuses and late-rate figures
            return {t["thread_id"]: t for t in b["threads"]} | {"_": b}

        at_1130 = await both(t0 + timedelta(hours=1, minutes=30))
        assert set(at_1130) - {"_"} == {"backdated-buyer", "late-mark", "late-reply"}
        assert at_1130["backdated-buyer"]["awaiting_since"] == t0.isoformat()
        at_1230 = await both(t0 + timedelta(hours=2, minutes=30))
        assert set(at_1230) - {"_"} == set()  # the 12:00 reply and mark answered everything before them
        later = await both(t0 + timedelta(hours=5))
        assert set(later) - {"_"} == {"late-mark", "late-reply"}  # backdated-buyer stays replied
        assert later["late-mark"]["awaiting_since"] == (t0 + timedelta(hours=3)).isoformat()
        assert later["late-mark"]["deadline"] == (t0 + timedelta(hours=27)).isoformat()
        assert later["late-reply"]["deadline"] == (t0 + timedelta(hours=28)).isoformat()
        # The 23:59 / 24:01 edges of the wait the late mark left open (it runs from the 13:00 message).
        edge = await both(t0 + timedelta(hours=3 + 23, minutes=59))
        assert edge["late-mark"]["status"] == "due_soon" and edge["late-mark"]["minutes_left"] == 1
        edge = await both(t0 + timedelta(hours=3 + 24, minutes=1))
        assert edge["late-mark"]["overdue"] is True and edge["late-reply"]["status"] == "due_soon"
        assert "backdated-buyer" not in edge
        # Late rate three days on: five waits were due (two per mark/reply thread, one in backdated-buyer),
        # answered on time at 12:00 except the two still open since 13:00 and 14:00.
        rates = (await both(t0 + timedelta(days=3)))["_"]["late_response_rate"]
        assert (rates["7d"]["threads_due"], rates["7d"]["late"], rates["7d"]["rate"]) == (5, 2, "0.4000")
