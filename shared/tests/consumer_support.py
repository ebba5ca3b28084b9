"""What the consumer tests share: the test handlers (per event and set-based, both refusing ``UNLUCKY``), the
records they send, consumers of the test topic, and the ``totals`` the handlers add to (conftest's ``pool``
has the table)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from aiokafka import AIOKafkaProducer

from unified_shared.consumer import HandlerTable, IdempotentConsumer, ReceivedEvent
from unified_shared.envelope import Envelope
from unified_shared.kafka import make_consumer

from .plumbing_support import TEST_TOPIC, AmountAdded

TOTALS_DDL = "CREATE TABLE totals (account_id UUID PRIMARY KEY, total INT NOT NULL, applied INT NOT NULL)"
UNLUCKY = 13  # the handler always fails on this amount


async def add_amount(conn: asyncpg.Connection, received: ReceivedEvent) -> None:
    event = received.event
    assert isinstance(event, AmountAdded)
    if event.amount == UNLUCKY:
        raise ValueError("13 is never accepted")
    await conn.execute(
        """INSERT INTO totals (account_id, total, applied) VALUES ($1, $2, 1)
           ON CONFLICT (account_id) DO UPDATE SET total = totals.total + $2, applied = totals.applied + 1""",
        event.account_id,
        event.amount,
    )


def record_for(event: AmountAdded, event_id: UUID | None = None) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    env = Envelope(
        id=event_id or uuid4(),
        source="/services/test",
        type=event.ce_type(),
        time=datetime.now(UTC),
        subject="s",
        partitionkey=str(event.account_id),
    )
    return event.partition_key().encode(), event.to_json_bytes(), env.to_headers()


async def send(producer: AIOKafkaProducer, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
    await producer.send_and_wait(TEST_TOPIC, value=value, key=key, headers=headers)


async def make_consumer_for(
    pool: asyncpg.Pool, bootstrap: str, producer: AIOKafkaProducer, name: str
) -> IdempotentConsumer:
    kafka = make_consumer(bootstrap, group_id=name, client_id=name, topics=[])
    consumer = IdempotentConsumer(
        pool, kafka, producer, name=name, topics=[TEST_TOPIC], handler=add_amount, backoff_base_s=0.01
    )
    consumer.subscribe()
    await kafka.start()
    return consumer


@contextlib.asynccontextmanager
async def running_consumer(
    pool: asyncpg.Pool, bootstrap: str, producer: AIOKafkaProducer, name: str
) -> AsyncIterator[IdempotentConsumer]:
    """A started consumer of the test topic (``make_consumer_for``), stopped when the block ends."""
    consumer = await make_consumer_for(pool, bootstrap, producer, name)
    try:
        yield consumer
    finally:
        await consumer.consumer.stop()


async def totals(pool: asyncpg.Pool, account: UUID) -> tuple[int, int]:
    row = await pool.fetchrow("SELECT total, applied FROM totals WHERE account_id = $1", account)
    return (row["total"], row["applied"]) if row else (0, 0)


async def poll_until(consumer: IdempotentConsumer, pool: asyncpg.Pool, account: UUID, applied: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        await consumer.poll_once()
        if (await totals(pool, account))[1] >= applied:
            return
    raise AssertionError(f"only {await totals(pool, account)} applied")


async def drain(consumer: IdempotentConsumer, rounds: int = 6) -> None:
    for _ in range(rounds):
        await consumer.poll_once()


async def sum_batch(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
    """Set-based: every account's amounts of the batch in one statement; 13 poisons the batch."""
    sums: dict[UUID, list[int]] = {}
    for r in events:
        assert isinstance(r.event, AmountAdded)
        if r.event.amount == UNLUCKY:
            raise ValueError("13 is never accepted")
        sums.setdefault(r.event.account_id, [0, 0])
        sums[r.event.account_id][0] += r.event.amount
        sums[r.event.account_id][1] += 1
    await conn.execute(
        """INSERT INTO totals (account_id, total, applied) SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[])
           ON CONFLICT (account_id) DO UPDATE
           SET total = totals.total + EXCLUDED.total, applied = totals.applied + EXCLUDED.applied""",
        list(sums),
        [v[0] for v in sums.values()],
        [v[1] for v in sums.values()],
    )
    BATCH_SIZES.append(len(events))


BATCH_SIZES: list[int] = []


async def batch_consumer(
    db: asyncpg.Pool,
    bootstrap: str,
    dlq_producer: AIOKafkaProducer,
    name: str,
    handler: Any = sum_batch,
    **options: Any,
) -> Any:
    """A started batch consumer of the test topic named ``name``, applying AmountAdded with ``handler``."""
    kafka = make_consumer(bootstrap, group_id=name, client_id=name, topics=[])
    handlers = HandlerTable({AmountAdded: handler})
    consumer = IdempotentConsumer(db, kafka, dlq_producer, name=name, topics=[TEST_TOPIC], handlers=handlers, **options)
    consumer.subscribe()
    await kafka.start()
    return consumer
