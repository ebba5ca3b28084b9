"""A close that cannot run never stalls the others: a busy account answers 503 and stays due, a failing
close is recorded and tried after the rest, and both are retried by later runs."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal as D
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from unified_billing import locks, store
from unified_billing.domain import Fact, Period
from unified_billing.handlers import AccountOutcome, Billing, CloseIncomplete
from unified_shared.testing import TestIssuer

from .support import (
    US,
    Clock,
    billing_from_now,
    feed,
    registered,
    selling,
    uncommitted,
)
from .test_closing import billing, documents


def failures_counted(reason: str) -> float:
    return REGISTRY.get_sample_value("billing_close_failures_total", {"reason": reason}) or 0.0


async def close_failures(pool: asyncpg.Pool) -> dict[tuple[uuid.UUID, str], int]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT account_id, period, attempts FROM billing_close_failures")
    return {(r["account_id"], r["period"]): r["attempts"] for r in rows}


async def test_a_busy_account_answers_503_and_the_scheduler_moves_on(
    pool: asyncpg.Pool, fresh_db: str, kafka_bootstrap: str
) -> None:
    busy, other = sorted([uuid.uuid4(), uuid.uuid4()])  # the busy account comes first in every run
    for account in (busy, other):
        await feed(pool, registered(account, US), *selling(account, US, "2026-09-03T09:00"))
    issuer = TestIssuer()

    def mine(outcomes: list[AccountOutcome]) -> list[tuple[uuid.UUID, str, str]]:
        """Topics are shared: the service may have consumed other tests' accounts too."""
        return [(o.account_id, o.period, o.status) for o in outcomes if o.account_id in (busy, other)]

    async with (
        issuer.serve() as jwks_url,
        billing_from_now(
            fresh_db,
            kafka_bootstrap,
            issuer,
            jwks_url,
            clock=Clock("2026-10-02T06:00:00Z"),
            name="busy",
            close_lock_timeout_s=0.5,
        ) as svc,
    ):
        b: Billing = svc.app.state.handlers
        before = failures_counted("busy")
        # The consumer's batch transaction: the account's fact lock, exclusively, held until released.
        async with uncommitted(
            pool, "SELECT pg_advisory_xact_lock($1::int, $2::int)", locks.FACTS_LOCK_CLASS, locks.account_lock_key(busy)
        ):
            async with svc.client(svc.owner(busy)) as client:
                # A bound so that a close waiting for the lock fails the test instead of hanging it.
                response = await asyncio.wait_for(client.post("/v1/billing/periods/2026-09/close"), 30)
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["retry-after"] == "1"
            problem = response.json()
            assert problem["title"] == "Account busy" and "retry" in problem["detail"]
            assert problem["failed"] == [{"account_id": str(busy), "period": "2026-09", "busy": True}]
            # The scheduler's tick skips the busy account and closes the other one.
            outcomes = await asyncio.wait_for(b.scheduler_tick(), 30)
            assert mine(outcomes) == [(other, "2026-09", "closed")]
        assert failures_counted("busy") - before == 2
        assert await close_failures(pool) == {(busy, "2026-09"): 2}
        assert await documents(pool, busy) == []  # nothing issued: the period stays due
        # The lock is free again: the next run closes it.
        assert mine(await b.scheduler_tick()) == [(busy, "2026-09", "closed")]
        assert [(d["period"], d["total"]) for d in await documents(pool, busy)] == [("2026-09", D("39.99"))]
        assert await close_failures(pool) == {}


async def test_a_failing_close_is_recorded_and_tried_after_the_others(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad, good = sorted([uuid.uuid4(), uuid.uuid4()])  # the failing account sorts first
    for account in (bad, good):
        await feed(pool, registered(account, US), *selling(account, US, "2026-09-03T09:00"))
    real_load_facts = store.load_facts

    async def load_facts(conn: asyncpg.Connection, account_id: uuid.UUID) -> list[Fact]:
        if account_id == bad:
            raise RuntimeError("corrupt facts")
        return await real_load_facts(conn, account_id)

    monkeypatch.setattr(store, "load_facts", load_facts)
    b = billing(pool, Clock("2026-11-02T06:00:00Z"), scheduler_max_closes_per_tick=2)
    before = failures_counted("error")
    ticks: list[list[tuple[Any, str]]] = []
    for _ in range(3):
        ticks.append([(o.account_id, o.period) for o in await b.scheduler_tick()])
    assert ticks == [
        [(good, "2026-09")],  # bad's September failed first; the tick went on
        [(good, "2026-10")],  # bad's September (failed) waits behind the periods that did not fail
        [],  # only bad's failing periods are left: tried, and failed again
    ]
    assert failures_counted("error") - before == 4
    assert await close_failures(pool) == {(bad, "2026-09"): 2, (bad, "2026-10"): 2}
    # A run for one period reports what closed and what stays due.
    with pytest.raises(CloseIncomplete) as info:
        await b.close_period(Period(2026, 10))
    assert [(f.account_id, f.period, f.busy) for f in info.value.failures] == [
        (bad, "2026-10", False),
        (bad, "2026-09", False),
    ]
    assert [(o.account_id, o.period, o.issued) for o in info.value.outcomes] == [(good, "2026-10", [])]
    assert await close_failures(pool) == {(bad, "2026-09"): 3, (bad, "2026-10"): 3}
    # Fixed: the next tick closes them.
    monkeypatch.setattr(store, "load_facts", real_load_facts)
    outcomes = await b.scheduler_tick()
    assert sorted((o.account_id, o.period, o.status) for o in outcomes) == [
        (bad, "2026-09", "closed"),
        (bad, "2026-10", "closed"),
    ]
    assert [(d["period"], d["total"]) for d in await documents(pool, bad)] == [
        ("2026-09", D("39.99")),
        ("2026-10", D("39.99")),
    ]
    assert await close_failures(pool) == {}
