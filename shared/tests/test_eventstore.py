import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import asyncpg
import pytest

from unified_shared import eventstore
from unified_shared.db import SHARED_COMPONENT, apply_migrations, connect, migrate_database
from unified_shared.eventstore import ConcurrencyError

from .plumbing_support import AmountAdded


@pytest.fixture
async def conn(fresh_db: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a fresh database with the shared tables (event store, outbox)."""
    await migrate_database(fresh_db, [])
    conn = await connect(fresh_db)
    yield conn
    await conn.close()


@pytest.fixture
async def two_conns(fresh_db: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """Two connections to a fresh database with the shared tables: two transactions side by side."""
    await migrate_database(fresh_db, [])
    first, second = await connect(fresh_db), await connect(fresh_db)
    yield first, second
    await first.close()
    await second.close()


async def test_migrations_rerun_is_a_no_op(fresh_db: str) -> None:
    conn = await connect(fresh_db)
    try:
        first = await apply_migrations(conn, [SHARED_COMPONENT])
        second = await apply_migrations(conn, [SHARED_COMPONENT])
        assert first and second == []
    finally:
        await conn.close()


async def test_append_read_and_fold(conn: asyncpg.Connection) -> None:
    account = uuid4()
    async with conn.transaction():
        await eventstore.append(conn, "s-1", 0, [AmountAdded(account_id=account, amount=2)])
    async with conn.transaction():
        await eventstore.append(conn, "s-1", 1, [AmountAdded(account_id=account, amount=5)])
    stored = await eventstore.read_stream(conn, "s-1")
    assert [s.version for s in stored] == [1, 2]
    total, version = await eventstore.load(conn, "s-1", lambda acc, e: acc + e.amount, 0)  # type: ignore[attr-defined]
    assert (total, version) == (7, 2)
    with pytest.raises(ConcurrencyError):
        async with conn.transaction():
            await eventstore.append(conn, "s-1", 1, [AmountAdded(account_id=account, amount=1)])
    assert await eventstore.stream_version(conn, "s-1") == 2


async def test_concurrent_appends_at_the_same_version_exactly_one_wins(fresh_db: str) -> None:
    await migrate_database(fresh_db, [])
    account = uuid4()
    conns = [await connect(fresh_db) for _ in range(5)]
    gate = asyncio.Event()

    async def attempt(conn: object, n: int) -> str:
        async with conn.transaction():  # type: ignore[attr-defined]
            await gate.wait()
            try:
                await eventstore.append(conn, "race", 0, [AmountAdded(account_id=account, amount=n)])  # type: ignore[arg-type]
            except ConcurrencyError:
                return "conflict"
            await asyncio.sleep(0.05)  # hold the transaction open so the others really overlap
            return "won"

    try:
        tasks = [asyncio.create_task(attempt(c, i)) for i, c in enumerate(conns)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(*tasks)
        assert sorted(results) == ["conflict"] * 4 + ["won"]
        assert len(await eventstore.read_stream(conns[0], "race")) == 1
    finally:
        for c in conns:
            await c.close()


async def test_migrate_database_creates_a_missing_database_and_reruns_as_a_no_op(infra) -> None:  # type: ignore[no-untyped-def]
    import asyncpg

    from unified_shared.db import migrate_database

    name = f"t_{uuid4().hex[:12]}"
    dsn = infra.dsn_for(name)
    try:
        first = await migrate_database(dsn, [])
        assert first and all(m.startswith("shared:") for m in first)
        assert await migrate_database(dsn, []) == []
    finally:
        conn = await asyncpg.connect(infra.pg_admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def test_an_expected_version_ahead_of_the_stream_appends_nothing(conn: asyncpg.Connection) -> None:
    """The unique constraint catches a stream that moved on; the guard catches one that is behind."""
    account = uuid4()
    with pytest.raises(ConcurrencyError) as raised:
        async with conn.transaction():
            await eventstore.append(conn, "s-ahead", 3, [AmountAdded(account_id=account, amount=1)])
    assert (raised.value.expected, raised.value.actual) == (3, 0)
    assert await eventstore.read_stream(conn, "s-ahead") == []


async def test_one_append_writes_many_streams_in_the_order_given(conn: asyncpg.Connection) -> None:
    account = uuid4()
    async with conn.transaction():
        await eventstore.append(conn, "m-2", 0, [AmountAdded(account_id=account, amount=0)])
    async with conn.transaction():
        stored = await eventstore.append_streams(
            conn,
            [
                eventstore.StreamAppend("m-1", 0, [AmountAdded(account_id=account, amount=n) for n in (1, 2)]),
                eventstore.StreamAppend("m-2", 1, [AmountAdded(account_id=account, amount=3)]),
            ],
        )
    assert [(s.stream_id, s.version, s.payload["amount"]) for s in stored] == [
        ("m-1", 1, 1),
        ("m-1", 2, 2),
        ("m-2", 2, 3),
    ]
    assert [s.position for s in stored] == sorted(s.position for s in stored)
    with pytest.raises(ConcurrencyError) as raised:
        async with conn.transaction():
            await eventstore.append_streams(
                conn,
                [
                    eventstore.StreamAppend("m-3", 0, [AmountAdded(account_id=account, amount=4)]),
                    eventstore.StreamAppend("m-2", 1, [AmountAdded(account_id=account, amount=5)]),
                ],
            )
    assert raised.value.stream_id == "m-2"
    assert await eventstore.read_stream(conn, "m-3") == []  # all or nothing


async def test_a_command_that_has_not_appended_yet_blocks_no_other_append(
    two_conns: tuple[asyncpg.Connection, asyncpg.Connection],
) -> None:
    """Commands run side by side: the append lock is taken by the insert, not by the command's start."""
    first, second = two_conns
    account = uuid4()
    tx = first.transaction()
    await tx.start()
    await first.fetchval("SELECT count(*) FROM event_store")  # a command that reads and decides
    async with second.transaction():
        await asyncio.wait_for(
            eventstore.append(second, "side-by-side", 0, [AmountAdded(account_id=account, amount=1)]), 10
        )
    await eventstore.append(first, "side-by-side-2", 0, [AmountAdded(account_id=account, amount=2)])
    await tx.commit()
    assert len(await eventstore.read_stream(second, "side-by-side")) == 1


async def test_an_instant_postgresql_would_store_as_infinity_never_enters_the_store(conn: asyncpg.Connection) -> None:
    """Issue 11's root cause: year 1 became -infinity and stalled the relay. Refused at append."""
    for when in (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC), datetime(2026, 9, 1)):
        with pytest.raises(ValueError, match="occurred_at"):
            async with conn.transaction():
                await eventstore.append(conn, "s-inf", 0, [AmountAdded(account_id=uuid4(), amount=1)], occurred_at=when)
    assert await eventstore.read_stream(conn, "s-inf") == []


async def test_a_streams_next_version_from_an_older_transaction_is_refused(
    two_conns: tuple[asyncpg.Connection, asyncpg.Connection],
) -> None:
    """The relay publishes in transaction order, so version 2 of a stream must not come from a transaction
    older than version 1's: such an append is a ConcurrencyError (a retry, in a new transaction, works)."""
    early, other = two_conns
    account = uuid4()
    tx = early.transaction()
    await tx.start()
    await early.execute("SELECT pg_current_xact_id()")  # it wrote something before reading the stream
    async with other.transaction():
        await eventstore.append(other, "ordered", 0, [AmountAdded(account_id=account, amount=1)])
    with pytest.raises(ConcurrencyError):
        await eventstore.append(early, "ordered", 1, [AmountAdded(account_id=account, amount=2)])
    await tx.rollback()
    async with early.transaction():
        await eventstore.append(early, "ordered", 1, [AmountAdded(account_id=account, amount=2)])
    assert [s.version for s in await eventstore.read_stream(early, "ordered")] == [1, 2]


async def test_an_append_returns_the_rows_exactly_as_stored(conn: asyncpg.Connection) -> None:
    """append_streams builds its result from what it sent (only position and txid come back)."""
    account = uuid4()
    instants = [
        datetime(2026, 9, 1, 10, 0, 0, 120, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 9, 2, tzinfo=UTC),
    ]
    async with conn.transaction():
        returned = await eventstore.append_streams(
            conn,
            [
                eventstore.StreamAppend(
                    "r-1", 0, [AmountAdded(account_id=account, amount=n) for n in (1, 2)], instants
                ),
                eventstore.StreamAppend("r-2", 0, [AmountAdded(account_id=account, amount=3)]),
            ],
            traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
    stored = await eventstore.read_stream(conn, "r-1") + await eventstore.read_stream(conn, "r-2")
    assert returned == stored
    assert [s.occurred_at.utcoffset() for s in returned] == [timedelta(0)] * 3


async def test_each_event_can_carry_its_own_trace(conn: asyncpg.Connection) -> None:
    """A command that appends what several requests caused (a group commit) keeps each request's trace."""
    account = uuid4()
    mine, theirs, default = (f"00-{uuid4().hex}-b7ad6b7169203331-01" for _ in range(3))
    async with conn.transaction():
        returned = await eventstore.append_streams(
            conn,
            [
                eventstore.StreamAppend(
                    "t-1", 0, [AmountAdded(account_id=account, amount=n) for n in (1, 2)], traceparent=[mine, None]
                ),
                eventstore.StreamAppend("t-2", 0, [AmountAdded(account_id=account, amount=3)], traceparent=theirs),
                eventstore.StreamAppend("t-3", 0, [AmountAdded(account_id=account, amount=4)]),
            ],
            traceparent=default,
        )
    stored = [e for s in ("t-1", "t-2", "t-3") for e in await eventstore.read_stream(conn, s)]
    assert [e.traceparent for e in stored] == [mine, default, theirs, default]
    assert returned == stored
    with pytest.raises(ValueError, match="one traceparent per event"):
        async with conn.transaction():
            await eventstore.append_streams(
                conn, [eventstore.StreamAppend("t-4", 0, [AmountAdded(account_id=account, amount=5)], traceparent=[])]
            )
