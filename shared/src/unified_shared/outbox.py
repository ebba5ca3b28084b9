"""Outbox relay: publishes event-store rows to Kafka in commit (= position) order.

Loop: read rows after the saved position, send each with key = account_id and CloudEvents headers, wait
for every acknowledgement, then save the new position. A crash between sending and saving republishes the
same rows on restart (duplicates, never loss); consumers deduplicate on ``ce_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import asyncpg
from aiokafka import AIOKafkaProducer

from unified_shared.envelope import Envelope
from unified_shared.eventstore import StoredEvent, _row_to_stored
from unified_shared.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        *,
        source: str,
        name: str = "default",
        batch_size: int = 500,
        poll_interval_s: float = 0.2,
    ) -> None:
        self.pool = pool
        self.producer = producer
        self.source = source
        self.name = name
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.last_error: str | None = None
        self._wakeup = asyncio.Event()

    def notify(self) -> None:
        """Wake the relay now (after a command committed events) instead of waiting for the next poll."""
        self._wakeup.set()

    async def position(self, conn: asyncpg.Connection) -> int:
        value = await conn.fetchval("SELECT position FROM outbox_position WHERE relay = $1", self.name)
        return int(value or 0)

    async def save_position(self, conn: asyncpg.Connection, position: int) -> None:
        await conn.execute(
            """INSERT INTO outbox_position (relay, position) VALUES ($1, $2)
               ON CONFLICT (relay) DO UPDATE SET position = EXCLUDED.position, updated_at = now()""",
            self.name,
            position,
        )

    async def backlog(self) -> int:
        async with self.pool.acquire() as conn:
            head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM event_store")
            backlog = max(0, int(head) - await self.position(conn))
        OUTBOX_BACKLOG.labels(self.name).set(backlog)
        return backlog

    def envelope(self, stored: StoredEvent) -> Envelope:
        return Envelope(
            id=stored.event_id,
            source=self.source,
            type=stored.event_type,
            time=stored.occurred_at,
            subject=stored.stream_id,
            partitionkey=stored.partition_key,
            sequence=stored.version,
            traceparent=stored.traceparent,
        )

    async def publish_once(self) -> int:
        """Publish the next batch; returns how many rows were published."""
        async with self.pool.acquire() as conn:
            start = await self.position(conn)
            rows = await conn.fetch(
                "SELECT * FROM event_store WHERE position > $1 ORDER BY position LIMIT $2", start, self.batch_size
            )
            if not rows:
                OUTBOX_BACKLOG.labels(self.name).set(0)
                return 0
            batch = [_row_to_stored(r) for r in rows]
            futures = []
            for stored in batch:
                env = self.envelope(stored)
                futures.append(
                    await self.producer.send(
                        stored.topic,
                        value=_json_bytes(stored),
                        key=stored.partition_key.encode(),
                        headers=env.to_headers(),
                    )
                )
            await asyncio.gather(*futures)
            await self.save_position(conn, batch[-1].position)
            OUTBOX_PUBLISHED.labels(self.name).inc(len(batch))
            head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM event_store")
            OUTBOX_BACKLOG.labels(self.name).set(max(0, int(head) - batch[-1].position))
            return len(batch)

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                published = await self.publish_once()
                self.last_error = None
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep relaying after a broker or database outage
                self.last_error = repr(exc)
                log.warning("outbox relay failed; retrying", extra={"error": repr(exc), "retry_in_s": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if published < self.batch_size:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=self.poll_interval_s)


def _json_bytes(stored: StoredEvent) -> bytes:
    return json.dumps(stored.payload, separators=(",", ":"), sort_keys=True).encode()
