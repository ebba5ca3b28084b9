"""Which events a consumer has taken (``consumer_processed_events``): claimed in the batch's transaction, so
that a redelivered or replayed event is never applied twice."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg


async def claim(
    conn: asyncpg.Connection, consumer: str, keys: Sequence[UUID], outcomes: Sequence[str]
) -> set[UUID] | None:
    """Claim a batch's event IDs in one statement; returns those claimed now, or None when every distinct one
    was (the usual case: then no row per event comes back)."""
    claimed = await conn.fetchval(
        """WITH claimed AS (
               INSERT INTO consumer_processed_events (consumer, event_id, outcome)
               SELECT $1, k, o FROM unnest($2::uuid[], $3::text[]) AS t(k, o)
               ON CONFLICT DO NOTHING RETURNING event_id)
           SELECT CASE WHEN count(*) = $4 THEN NULL ELSE coalesce(array_agg(event_id), '{}') END FROM claimed""",
        consumer,
        list(keys),
        list(outcomes),
        len(set(keys)),
    )
    return None if claimed is None else set(claimed)


async def mark_dead_lettered(conn: asyncpg.Connection, consumer: str, event_ids: Sequence[UUID]) -> None:
    await conn.execute(
        """UPDATE consumer_processed_events SET outcome = 'dead-lettered'
           WHERE consumer = $1 AND event_id = ANY($2::uuid[])""",
        consumer,
        list(event_ids),
    )
