"""Test helpers for a service's consumer: apply events exactly as the consumer does, and start a consumer group
after everything the shared test topics already hold (they keep every earlier test's events)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from aiokafka import TopicPartition

from unified_shared.consumer import ReceivedEvent
from unified_shared.db import SHARED_COMPONENT, apply_migrations, connect
from unified_shared.envelope import Envelope
from unified_shared.events import Event
from unified_shared.kafka import make_reader

Handler = Callable[[asyncpg.Connection, ReceivedEvent], Awaitable[None]]


async def feed(pool: asyncpg.Pool, handler: Handler, *events: Event) -> None:
    """Apply events through ``handler``, one transaction each, as the consumer does."""
    async with pool.acquire() as conn:
        for n, event in enumerate(events):
            envelope = Envelope(
                id=uuid.uuid4(),
                source="/services/test",
                type=event.ce_type(),
                time=dt.datetime.now(dt.UTC),
                subject="test",
                partitionkey=event.partition_key(),
            )
            async with conn.transaction():
                await handler(conn, ReceivedEvent(envelope, event, event.TOPIC, 0, n))


async def topic_ends(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    """The next offset of every partition of ``topics``."""
    probe = make_reader(bootstrap, client_id=f"test-probe-{uuid.uuid4().hex[:8]}")
    await probe.start()
    try:
        await probe._client.force_metadata_update()  # a fresh client may know no topic yet
        parts = [TopicPartition(t, p) for t in topics for p in sorted(probe.partitions_for_topic(t) or [])]
        ends = await probe.end_offsets(parts)
    finally:
        await probe.stop()
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}


async def set_consumer_offsets(
    dsn: str, group: str, offsets: dict[tuple[str, int], int], migrations: Sequence[tuple[str, str]]
) -> None:
    """The service's consumer starts where these offsets say (it seeks to the offsets stored in its own
    database), so a test sees only the events published after them."""
    conn = await connect(dsn)
    try:
        await apply_migrations(conn, [SHARED_COMPONENT, *migrations])
        for (topic, partition), offset in offsets.items():
            await conn.execute(
                """INSERT INTO consumer_offsets (consumer, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset""",
                group,
                topic,
                partition,
                offset,
            )
    finally:
        await conn.close()
