"""The relay reads rows as it publishes them (payload text and CloudEvents time from the database): its
records carry the same headers and the same payload as an envelope of the stored event (real PostgreSQL)."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import asyncpg
import pytest

from unified_shared import eventstore
from unified_shared.db import migrated_pool
from unified_shared.outbox import OutboxRelay
from unified_shared.outbox_send import OUTGOING_COLUMNS, Outgoing

from .plumbing_support import AmountAdded

INSTANTS = [
    datetime(2026, 9, 1, 10, 0, tzinfo=UTC),  # no fraction: isoformat writes none
    datetime(2026, 9, 1, 10, 0, 0, 120, tzinfo=UTC),  # leading zeros in the microseconds
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),  # another year in UTC
    datetime(1900, 1, 1, 0, 0, 0, 500000, tzinfo=UTC),
]


@pytest.fixture
async def pool(fresh_db: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await migrated_pool(fresh_db)
    yield pool
    await pool.close()


async def test_records_read_for_publishing_match_the_envelope_of_the_stored_event(pool: asyncpg.Pool) -> None:
    account = uuid4()
    async with pool.acquire() as conn, conn.transaction():
        stored = await eventstore.append(
            conn, "s-1", 0, [AmountAdded(account_id=account, amount=i) for i in range(len(INSTANTS))]
        )
        # one instant per event, each in its own row
        for event, instant in zip(stored, INSTANTS, strict=True):
            await conn.execute("UPDATE event_store SET occurred_at = $1 WHERE position = $2", instant, event.position)
    relay = OutboxRelay(pool, None, source="/services/test")  # type: ignore[arg-type]
    rows = await pool.fetch(f"SELECT {OUTGOING_COLUMNS} FROM event_store ORDER BY position")
    full = [eventstore.row_to_stored(r) for r in await pool.fetch("SELECT * FROM event_store ORDER BY position")]
    assert len(rows) == len(INSTANTS)
    for row, event in zip(rows, full, strict=True):
        out = Outgoing.of_row(row)
        assert out.headers(b"/services/test", None) == relay.envelope(event).to_headers()
        assert json.loads(out.value) == event.payload
        assert Outgoing.of(event).headers(b"/services/test", None) == relay.envelope(event).to_headers()


async def test_a_row_without_a_publishable_instant_has_no_headers(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await eventstore.append(conn, "s-1", 0, [AmountAdded(account_id=uuid4(), amount=1)])
        await conn.execute("UPDATE event_store SET occurred_at = '-infinity'")
    out = Outgoing.of_row(await pool.fetchrow(f"SELECT {OUTGOING_COLUMNS} FROM event_store"))
    with pytest.raises(ValueError):
        out.headers(b"/services/test", None)
