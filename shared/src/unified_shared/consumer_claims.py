"""Which events a consumer has taken (``consumer_processed_events``): claimed in the batch's transaction, so
that a redelivered or replayed event is never applied twice."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg


async def claim(
    conn: asyncpg.Connection,
    consumer: str,
    keys: Sequence[UUID],
    outcomes: Sequence[str],
    *,
    durable: bool = True,
) -> set[UUID] | None:
    """Claim a batch's event IDs in one statement; returns those claimed now, or None when every distinct one
    was (the usual case: then no row per event comes back). ``durable`` False: the same statement sets the
    transaction's commit not to wait for the WAL flush (``synchronous_commit`` off, see IdempotentConsumer)."""
    row = await conn.fetchrow(
        """WITH claimed AS (
               INSERT INTO consumer_processed_events (consumer, event_id, outcome)
               SELECT $1, k, o FROM unnest($2::uuid[], $3::text[]) AS t(k, o)
               ON CONFLICT DO NOTHING RETURNING event_id)
           SELECT CASE WHEN count(*) = $4 THEN NULL ELSE coalesce(array_agg(event_id), '{}') END AS claimed,
                  CASE WHEN NOT $5 THEN set_config('synchronous_commit', 'off', true) END
           FROM claimed""",
        consumer,
        list(keys),
        list(outcomes),
        len(set(keys)),
        durable,
    )
    assert row is not None
    claimed = row["claimed"]
    return None if claimed is None else set(claimed)


async def commit_durably(conn: asyncpg.Connection) -> None:
    """This transaction's commit waits for the WAL flush again (a batch that records dead letters: a letter
    is sent after the commit, so the commit must not be lost)."""
    await conn.execute("SET LOCAL synchronous_commit = on")


async def mark_dead_lettered(conn: asyncpg.Connection, consumer: str, event_ids: Sequence[UUID]) -> None:
    await conn.execute(
        """UPDATE consumer_processed_events SET outcome = 'dead-lettered'
           WHERE consumer = $1 AND event_id = ANY($2::uuid[])""",
        consumer,
        list(event_ids),
    )
