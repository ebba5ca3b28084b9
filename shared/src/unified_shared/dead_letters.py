"""Dead letters as an outbox: recorded in the transaction of the batch that gave up on a record, sent to
``<topic>.dlq`` only after that commit, and marked sent. A batch that rolls back leaves no dead letter; a
crash after the commit sends it on the next start. Keyed by (scope, record identity): a replay, a second
instance or a rebuild (every generation of a view shares the scope) never dead-letters a record twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord

from unified_shared.metrics import CONSUMER_DLQ, CONSUMER_DLQ_PENDING

log = logging.getLogger(__name__)


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: ConsumerRecord[Any, Any]
    record_key: UUID  # the event ID, or the record's place in the log when it has none
    event_id: str | None
    reason: str


async def record(conn: asyncpg.Connection, scope: str, consumer: str, letters: list[DeadLetter]) -> list[DeadLetter]:
    """Record dead letters in the caller's transaction; returns those not recorded before (by anyone)."""
    new: list[DeadLetter] = []
    for letter in letters:
        r = letter.record
        headers = list(r.headers or [])
        inserted = await conn.fetchval(
            """INSERT INTO consumer_dead_letters (scope, record_key, consumer, topic, partition, "offset", event_id,
                   reason, kafka_key, kafka_value, header_keys, header_values)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
               ON CONFLICT (scope, record_key) DO NOTHING RETURNING true""",
            scope,
            letter.record_key,
            consumer,
            r.topic,
            r.partition,
            r.offset,
            letter.event_id,
            letter.reason[:2000],
            r.key,
            r.value,
            [k for k, _ in headers],
            [v for _, v in headers],
        )
        if inserted:
            new.append(letter)
    return new


def log_recorded(consumer: str, letters: list[DeadLetter]) -> None:
    """One line per dead letter, once (after its batch committed)."""
    for letter in letters:
        log.warning(
            "record dead-lettered",
            extra={
                "consumer": consumer,
                "topic": letter.record.topic,
                "partition": letter.record.partition,
                "offset": letter.record.offset,
                "event_id": letter.event_id,
                "reason": letter.reason[:500],
            },
        )


async def flush(pool: asyncpg.Pool, producer: AIOKafkaProducer, scope: str, consumer: str, limit: int = 100) -> int:
    """Send recorded, unsent dead letters of the scope (rows locked: two instances never send one twice)."""
    sent = 0
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT * FROM consumer_dead_letters WHERE scope = $1 AND sent_at IS NULL
               ORDER BY recorded_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            scope,
            limit,
        )
        for row in rows:
            headers: list[tuple[str, bytes]] = [
                *zip(row["header_keys"], row["header_values"], strict=True),
                ("dlq_id", str(row["record_key"]).encode()),
                ("dlq_original_topic", row["topic"].encode()),
                ("dlq_original_partition", str(row["partition"]).encode()),
                ("dlq_original_offset", str(row["offset"]).encode()),
                ("dlq_error", row["reason"].encode()),
                ("dlq_consumer", row["consumer"].encode()),
                ("dlq_failed_at", row["recorded_at"].astimezone(UTC).isoformat().encode()),
            ]
            await producer.send_and_wait(
                dlq_topic(row["topic"]), value=row["kafka_value"], key=row["kafka_key"], headers=headers
            )
            CONSUMER_DLQ.labels(consumer, row["topic"]).inc()
            sent += 1
        if rows:
            await conn.execute(
                "UPDATE consumer_dead_letters SET sent_at = $3 WHERE scope = $1 AND record_key = ANY($2::uuid[])",
                scope,
                [r["record_key"] for r in rows],
                datetime.now(UTC),
            )
        pending = await conn.fetchval(
            "SELECT count(*) FROM consumer_dead_letters WHERE scope = $1 AND sent_at IS NULL", scope
        )
    CONSUMER_DLQ_PENDING.labels(consumer).set(int(pending))
    return sent
