"""Closing periods against the real PostgreSQL: exactly once across instances, holds, scheduler, late events."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal as D
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from unified_billing.bootstrap import billing_over
from unified_billing.domain import Period
from unified_billing.handlers import Billing, PeriodNotEnded
from unified_billing.settings import Settings
from unified_shared.contracts.regions import (
    ListingsActivated,
    ListingsDeactivated,
    SubscriptionEnded,
    SubscriptionStarted,
)

from .support import (
    DE,
    JP,
    UK,
    US,
    Clock,
    feed,
    migrated_pool,
    new_seller,
    rates,
    registered,
    selling,
    uncommitted,
    utc,
)


def billing(pool: asyncpg.Pool, clock: Clock, **settings: object) -> Billing:
    return billing_over(pool, Settings(**settings), clock=clock)  # type: ignore[arg-type]


async def wait_until_blocked(pool: asyncpg.Pool, wait_event: str, *, unless: asyncio.Future[Any] | None) -> bool:
    """Poll until a session of this database waits for a lock of kind ``wait_event`` (True), or ``unless`` has
    finished (False). Only a synchronisation point: the test's assertions come afterwards."""
    async with pool.acquire() as conn:
        for _ in range(1200):
            if unless is not None and unless.done():
                return False
            waiting = await conn.fetchval(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = $1""",
                wait_event,
            )
            if waiting:
                return True
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing waited for a {wait_event} lock within 60 s")


async def documents(pool: asyncpg.Pool, account: uuid.UUID) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            "SELECT document_id, kind, period, currency, total FROM billing_documents WHERE account_id = $1 "
            "ORDER BY period, currency, document_id",
            account,
        )


async def billing_events(pool: asyncpg.Pool, account: uuid.UUID) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            "SELECT event_type, payload FROM event_store WHERE partition_key = $1 ORDER BY position", str(account)
        )


async def amazon_example_account(pool: asyncpg.Pool) -> uuid.UUID:
    return await new_seller(
        pool,
        US,
        (US, "2026-08-03T09:00"),
        (DE, "2026-08-10T09:00"),
        (JP, "2026-08-20T09:00"),
        rate_days=("2026-08-31", "2026-09-30"),
    )


async def test_two_instances_closing_at_once_issue_each_invoice_once(fresh_db: str) -> None:
    pools = [await migrated_pool(fresh_db), await migrated_pool(fresh_db)]
    try:
        account = await amazon_example_account(pools[0])
        clock = Clock("2026-10-02T06:00:00Z")
        instances = [billing(pools[0], clock), billing(pools[1], clock)]
        for _ in range(3):  # the same period closed concurrently, several times over
            await asyncio.gather(*(b.close_period(Period(2026, 9)) for b in instances for _ in range(2)))
        docs = await documents(pools[0], account)
        assert [(d["period"], d["currency"], d["total"]) for d in docs] == [
            ("2026-08", "USD", D("39.99")),  # the first period, never closed: closed by the same runs
            ("2026-09", "EUR", D("11.79")),
            ("2026-09", "JPY", D("1482")),
            ("2026-09", "USD", D("12.09")),
        ]
        assert all(d["kind"] == "invoice" for d in docs)
        events = await billing_events(pools[0], account)
        assert sorted(e["payload"]["invoice_id"] for e in events) == sorted(d["document_id"] for d in docs)
        assert {e["event_type"] for e in events} == {"unifiedseller.billing.InvoiceIssued.v1"}
    finally:
        for pool in pools:
            await pool.close()


async def test_first_period_then_capped_period(pool: asyncpg.Pool) -> None:
    account = await new_seller(
        pool,
        DE,
        (DE, "2026-08-03T09:00"),
        (US, "2026-08-05T09:00"),
        (JP, "2026-08-20T09:00"),
        rate_days=("2026-08-31", "2026-09-30"),
    )
    b = billing(pool, Clock("2026-10-01T00:00:00Z"))
    await b.close_period(Period(2026, 8))
    await b.close_period(Period(2026, 9))
    docs = await documents(pool, account)
    # August (first period): home DE only, 39 EUR capped at 39.99 USD = 32.45 EUR. September: the rule.
    assert [(d["period"], d["currency"], d["total"]) for d in docs] == [
        ("2026-08", "EUR", D("32.45")),
        ("2026-09", "EUR", D("11.79")),
        ("2026-09", "JPY", D("1482")),
        ("2026-09", "USD", D("12.09")),
    ]


async def test_an_open_period_cannot_be_closed(pool: asyncpg.Pool) -> None:
    with pytest.raises(PeriodNotEnded):
        await billing(pool, Clock("2026-09-30T23:59:59Z")).close_period(Period(2026, 9))


async def test_missing_fx_rate_holds_the_period_until_the_rate_arrives(pool: asyncpg.Pool) -> None:
    # The rates of Wednesday the 28th only: the 29th and 30th (weekdays) are not in yet.
    account = await new_seller(pool, US, (US, "2026-09-03T09:00"), (JP, "2026-09-20T09:00"), rate_days=("2026-10-28",))
    clock = Clock("2026-11-02T06:00:00Z")
    b = billing(pool, clock)
    await b.close_period(Period(2026, 9), account)  # the first period: home US only, no rate needed
    (outcome,) = await b.close_period(Period(2026, 10), account)
    assert outcome.status == "held" and "2026-10-31" in (outcome.reason or "")
    assert [d["period"] for d in await documents(pool, account)] == ["2026-09"]  # nothing for October
    assert REGISTRY.get_sample_value("billing_held_periods") == 1
    await feed(pool, rates("2026-10-30", usd="1.1172", jpy="175.68"))
    outcomes = await b.scheduler_tick()  # the next run picks the held period up
    assert [(o.period, o.status) for o in outcomes] == [("2026-10", "closed")]
    docs = await documents(pool, account)
    # US 39.99 + JP 4900 JPY = 31.16 USD: S = 71.15 > 39.99, r = 0.56...
    assert [(d["period"], d["currency"], d["total"]) for d in docs] == [
        ("2026-09", "USD", D("39.99")),
        ("2026-10", "JPY", D("2754")),
        ("2026-10", "USD", D("22.47")),
    ]
    assert REGISTRY.get_sample_value("billing_held_periods") == 0


async def test_scheduler_closes_the_previous_month_only_once_it_has_ended(pool: asyncpg.Pool) -> None:
    account = await new_seller(
        pool, US, (US, "2026-09-03T09:00"), (UK, "2026-10-03T09:00"), rate_days=("2026-09-30", "2026-10-30")
    )
    clock = Clock("2026-10-31T23:59:59Z")
    b = billing(pool, clock)
    await b.scheduler_tick()
    assert [(d["period"], d["currency"]) for d in await documents(pool, account)] == [("2026-09", "USD")]
    clock.set("2026-11-01T00:00:01Z")
    await b.scheduler_tick()
    await b.scheduler_tick()  # nothing twice
    docs = await documents(pool, account)
    # October: US 39.99 USD + UK 25 GBP (= 36.24 USD): S = 76.23, r = 0.5246...
    assert [(d["period"], d["currency"], d["total"]) for d in docs] == [
        ("2026-09", "USD", D("39.99")),
        ("2026-10", "GBP", D("13.11")),
        ("2026-10", "USD", D("20.97")),
    ]


async def test_late_events_for_a_closed_period_give_a_credit_note_and_never_edit(pool: asyncpg.Pool) -> None:
    account = await amazon_example_account(pool)
    clock = Clock("2026-10-02T06:00:00Z")
    b = billing(pool, clock)
    await b.close_period(Period(2026, 9))
    before = await documents(pool, account)
    # Recorded late: JP's listings and subscription actually ended before September began.
    await feed(
        pool,
        ListingsDeactivated(account_id=account, marketplace_id=JP, at=utc("2026-08-31T12:00")),
        SubscriptionEnded(account_id=account, marketplace_id=JP, at=utc("2026-08-31T12:00")),
    )
    clock.set("2026-10-03T06:00:00Z")
    await b.scheduler_tick()
    docs = await documents(pool, account)
    assert [tuple(d) for d in before] == [tuple(d) for d in docs if d["kind"] == "invoice"]  # unchanged
    adjustments = {(d["kind"], d["currency"]): d["total"] for d in docs if d["kind"] != "invoice"}
    # Without JP: US 39.99 + DE 48.048 = 88.038 USD, r = 0.4542...: 18.16 USD, 17.71 EUR.
    assert adjustments == {
        ("credit_note", "JPY"): D("1482"),
        ("supplementary", "USD"): D("18.16") - D("12.09"),
        ("supplementary", "EUR"): D("17.71") - D("11.79"),
    }
    await b.scheduler_tick()
    await b.close_period(Period(2026, 9))
    assert len(await documents(pool, account)) == len(docs)  # settled: nothing more
    types = [e["event_type"].split(".")[2] for e in await billing_events(pool, account)]
    assert sorted(types) == ["CreditNoteIssued"] + ["InvoiceIssued"] * 6  # August's invoice too


async def test_a_fact_committed_while_a_close_runs_is_never_lost(pool: asyncpg.Pool) -> None:
    account = await new_seller(pool, US, (US, "2026-08-03T09:00"), rate_days=("2026-09-30",))
    b = billing(pool, Clock("2026-10-02T06:00:00Z"))
    await b.close_period(Period(2026, 8))
    # A barrier: an uncommitted September row makes the close wait at its own upsert, i.e. after it has
    # read the facts and before it commits.
    async with uncommitted(
        pool,
        "INSERT INTO billing_periods (account_id, period, status, reason) VALUES ($1, '2026-09', 'held', 'x')",
        account,
    ):
        closing = asyncio.create_task(b.close_account_period(account, Period(2026, 9)))
        assert await wait_until_blocked(pool, "transactionid", unless=closing)
        # Now the consumer records a UK subscription in September (it waits for the close, or it commits
        # before the close does: either way the fact must reach September's invoices).
        consuming = asyncio.create_task(feed(pool, *selling(account, UK, "2026-09-20T09:00")))
        await wait_until_blocked(pool, "advisory", unless=consuming)
    assert (await closing).status == "closed"
    await consuming
    await b.scheduler_tick()  # the next run
    docs = {(d["kind"], d["currency"]): d["total"] for d in await documents(pool, account) if d["period"] == "2026-09"}
    # US 39.99 + UK 25 GBP (= 36.24 USD): S = 76.23, r = 0.5246...: 20.97 USD, 13.11 GBP.
    assert docs == {
        ("invoice", "USD"): D("39.99"),
        ("credit_note", "USD"): D("39.99") - D("20.97"),
        ("invoice", "GBP"): D("13.11"),
    }


@pytest.mark.parametrize("next_run", ["scheduler", "close-period"])
async def test_a_late_fact_in_a_month_never_closed_is_billed_by_the_next_run(pool: asyncpg.Pool, next_run: str) -> None:
    account = await new_seller(pool, US, (US, "2026-09-03T09:00"))
    b = billing(pool, Clock("2026-11-02T06:00:00Z"))
    await b.close_period(Period(2026, 9))
    await b.close_period(Period(2026, 10))
    assert [(d["period"], d["total"]) for d in await documents(pool, account)] == [
        ("2026-09", D("39.99")),
        ("2026-10", D("39.99")),
    ]
    # Recorded late: the US subscription and its listings actually started in July. July (now the first
    # period) and August have no billing_periods row: nothing was ever closed for them.
    await feed(
        pool,
        SubscriptionStarted(account_id=account, marketplace_id=US, at=utc("2026-07-10T09:00")),
        ListingsActivated(account_id=account, marketplace_id=US, at=utc("2026-07-10T09:00")),
    )
    if next_run == "scheduler":
        await b.scheduler_tick()
    else:
        await b.close_period(Period(2026, 10))
    assert [(d["period"], d["kind"], d["total"]) for d in await documents(pool, account)] == [
        ("2026-07", "invoice", D("39.99")),
        ("2026-08", "invoice", D("39.99")),
        ("2026-09", "invoice", D("39.99")),
        ("2026-10", "invoice", D("39.99")),
    ]


async def test_scheduler_closes_every_month_missed_while_down_oldest_first_bounded_per_tick(pool: asyncpg.Pool) -> None:
    early, late = sorted([uuid.uuid4(), uuid.uuid4()])
    await feed(
        pool,
        registered(early, US),
        *selling(early, US, "2026-08-03T09:00"),
        registered(late, US),
        *selling(late, US, "2026-10-03T09:00"),
    )
    # Billing was down from August to December 2nd: nothing was ever closed.
    b = billing(pool, Clock("2026-12-02T06:00:00Z"), scheduler_max_closes_per_tick=3)
    ticks = [[(o.account_id, o.period) for o in await b.scheduler_tick()] for _ in range(3)]
    assert ticks == [
        [(early, "2026-08"), (early, "2026-09"), (early, "2026-10")],
        [(late, "2026-10"), (early, "2026-11"), (late, "2026-11")],
        [],
    ]
    assert [(d["period"], d["total"]) for d in await documents(pool, early)] == [
        (p, D("39.99")) for p in ("2026-08", "2026-09", "2026-10", "2026-11")
    ]
    assert [(d["period"], d["total"]) for d in await documents(pool, late)] == [
        (p, D("39.99")) for p in ("2026-10", "2026-11")
    ]


async def test_held_periods_are_retried_after_due_ones_and_in_turn(pool: asyncpg.Pool) -> None:
    # September is the first period (home US, no rate needed); October and November need rates that never
    # arrive in this test, so they stay held.
    account = await new_seller(pool, US, (US, "2026-09-03T09:00"))
    await feed(pool, *selling(account, JP, "2026-09-20T09:00"))
    b = billing(pool, Clock("2026-12-02T06:00:00Z"), scheduler_max_closes_per_tick=1)
    ticks = [[(o.period, o.status) for o in await b.scheduler_tick()] for _ in range(5)]
    assert ticks == [
        [("2026-09", "closed")],
        [("2026-10", "held")],
        [("2026-11", "held")],
        [("2026-10", "held")],  # the least recently tried hold first: no hold starves another
        [("2026-11", "held")],
    ]


async def test_closed_through_marker_skips_clean_months_and_a_late_fact_moves_it_back(pool: asyncpg.Pool) -> None:
    """due_periods looks only after each account's 'closed through' marker; a late fact rewinds it so the
    months it changes are due again (dirty), and closing them advances it again."""
    from unified_billing import store

    account = await new_seller(pool, US, (US, "2026-08-03T09:00"))
    b = billing(pool, Clock("2026-11-02T06:00:00Z"))
    for month in (8, 9, 10):
        await b.close_period(Period(2026, month))

    async def marker() -> str | None:
        return await pool.fetchval("SELECT period FROM billing_closed_through WHERE account_id = $1", account)

    async def due() -> list[str]:
        async with pool.acquire() as conn:
            return [str(p) for _, p in await store.due_periods(conn, up_to=Period(2026, 10), account_id=account)]

    assert await marker() == "2026-10"
    assert await due() == []
    await feed(pool, ListingsDeactivated(account_id=account, marketplace_id=US, at=utc("2026-09-20T09:00")))
    assert await marker() == "2026-08"
    assert await due() == ["2026-09", "2026-10"]
    await b.close_period(Period(2026, 9))
    assert await marker() == "2026-09"
    await b.close_period(Period(2026, 10))
    assert (await marker(), await due()) == ("2026-10", [])
