"""The shared skeleton: domain errors map to problem+json once, the command unit of work commits its appends
and wakes the relay only after a commit, and the fake unit of work behaves the same way in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from unified_shared import eventstore
from unified_shared.clock import FixedClock
from unified_shared.db import create_pool, migrate_database
from unified_shared.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, RateLimited, Unavailable
from unified_shared.eventstore import ConcurrencyError
from unified_shared.problems import PROBLEM_JSON, install_problem_handlers, problem_of
from unified_shared.uow import FakeUnits, PgUnits

from .plumbing_support import AmountAdded


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Invalid("a", "bad a"), 422),
        (Forbidden("a", "not yours"), 403),
        (NotFound("a", "no a"), 404),
        (Conflict("a", "other a"), 409),
        (Unavailable("a", "not yet", retry_after=3), 503),
        (RateLimited(None, "slow down", retry_after=7), 429),
        (DomainError("a", "plain"), 422),
    ],
)
def test_each_domain_error_has_one_status(error: DomainError, status: int) -> None:
    problem = problem_of(error, extra_fact=1)
    body = problem.body()
    assert problem.status == body["status"] == status
    assert body["detail"] == error.detail and body["extra_fact"] == 1
    assert body.get("field") == error.field
    if isinstance(error, Unavailable):
        assert problem.headers["Retry-After"] == str(error.retry_after) == str(body["retry_after"])


async def test_a_raised_domain_error_answers_problem_json() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/orders/v0/orders/{x}")
    async def refuse(x: str) -> None:
        if x == "late":
            raise Unavailable("MarketplaceId", "not learned yet", title="Not known yet", marketplace_id="M")
        raise Forbidden("MarketplaceId", "outside your scope")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        forbidden = await client.get("/orders/v0/orders/1")
        late = await client.get("/orders/v0/orders/late")
    assert forbidden.status_code == 403 and forbidden.headers["content-type"] == PROBLEM_JSON
    body = forbidden.json()
    assert body["field"] == "MarketplaceId" and body["instance"] == "/orders/v0/orders/1"
    assert body["errors"][0]["code"] == "Unauthorized"  # SP-API paths carry SP-API's ErrorList too
    assert late.status_code == 503 and late.headers["Retry-After"] == "1"
    assert late.json()["title"] == "Not known yet" and late.json()["marketplace_id"] == "M"


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock(datetime(2026, 9, 1, 12, tzinfo=UTC))
    assert clock() == clock() == datetime(2026, 9, 1, 12, tzinfo=UTC)
    assert clock.advance(timedelta(hours=1)) == clock() == datetime(2026, 9, 1, 13, tzinfo=UTC)


class Counter:
    def __init__(self) -> None:
        self.value = 0


async def test_fake_units_commit_append_and_roll_back() -> None:
    store = Counter()
    units = FakeUnits(store)
    account = uuid4()
    async with units.command() as uow:
        uow.store.value += 1
        await uow.append("s", 0, [AmountAdded(account_id=account, amount=1)])
    assert (store.value, units.version("s"), units.notified, units.commits) == (1, 1, 1, 1)
    with pytest.raises(ConcurrencyError):
        async with units.command() as uow:
            uow.store.value += 1
            await uow.append("s", 0, [AmountAdded(account_id=account, amount=2)])
    assert (store.value, units.version("s"), units.notified) == (1, 1, 1)  # rolled back in place
    async with units.command() as uow:  # a command that appends nothing does not wake the relay
        assert uow.store.value == 1
    assert (units.commits, units.notified) == (2, 1)


async def test_pg_units_wake_the_relay_after_commit_only(fresh_db: str) -> None:
    await migrate_database(fresh_db, [])
    pool = await create_pool(fresh_db, max_size=2)
    conns: list[asyncpg.Connection] = []
    woken: list[str] = []

    async def visible() -> int:
        async with pool.acquire() as c:
            return await eventstore.stream_version(c, "s")

    def bind(conn: asyncpg.Connection) -> asyncpg.Connection:
        conns.append(conn)
        return conn

    def notify() -> None:
        try:
            woken.append("in transaction" if conns[-1].is_in_transaction() else "committed")
        except asyncpg.InterfaceError:  # already back in the pool: committed and released
            woken.append("committed")

    units: PgUnits[asyncpg.Connection] = PgUnits(lambda: pool, bind, notify)
    account = uuid4()
    try:
        async with units.command() as uow:
            await uow.lock("s")
            await uow.append("s", 0, [AmountAdded(account_id=account, amount=1)])
        assert woken == ["committed"] and await visible() == 1
        with pytest.raises(RuntimeError):
            async with units.command() as uow:
                await uow.append("s", 1, [AmountAdded(account_id=account, amount=2)])
                raise RuntimeError("refused after the append")
        assert woken == ["committed"] and await visible() == 1  # rolled back, relay not woken
        with pytest.raises(ConcurrencyError):
            async with units.command() as uow:
                await uow.append("s", 0, [AmountAdded(account_id=account, amount=3)])
        async with units.query() as c:
            assert await eventstore.stream_version(c, "s") == 1
        assert woken == ["committed"]
    finally:
        await pool.close()
