"""Where a consumer stands, kept in PostgreSQL (authoritative; Kafka's committed offsets only follow): the
next offset per (consumer, topic, partition) and the time of the newest event applied there."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord


async def stored(pool: asyncpg.Pool, consumer: str) -> dict[tuple[str, int], int]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer = $1", consumer
        )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def save(
    conn: asyncpg.Connection, consumer: str, applied: Sequence[tuple[ConsumerRecord[Any, Any], datetime | None]]
) -> None:
    """After a batch (in its transaction): each partition's next offset and its newest known event time."""
    latest: dict[tuple[str, int], tuple[int, datetime | None]] = {}
    for r, event_time in applied:
        previous = latest.get((r.topic, r.partition))
        when = event_time if event_time is not None or previous is None else previous[1]
        latest[(r.topic, r.partition)] = (r.offset + 1, when)
    keys = list(latest)
    await conn.execute(
        """INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, last_event_time)
           SELECT $1, t, p, o, w FROM unnest($2::text[], $3::int[], $4::bigint[], $5::timestamptz[])
               AS x(t, p, o, w)
           ON CONFLICT (consumer, topic, partition) DO UPDATE
           SET next_offset = EXCLUDED.next_offset,
               last_event_time = coalesce(EXCLUDED.last_event_time, consumer_offsets.last_event_time),
               updated_at = now()""",
        consumer,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [latest[k][0] for k in keys],
        [latest[k][1] for k in keys],
    )
