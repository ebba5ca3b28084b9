"""Throughput of the shared plumbing on this machine: event-store appends, outbox relay, idempotent consumer.

Run with Kafka and PostgreSQL up (``make infra-up``): ``.venv/bin/python bench/bench_plumbing.py [N]``.
Prints figures; asserts nothing (speed goals live here, never in tests).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from typing import ClassVar

import asyncpg

from unified_shared import eventstore
from unified_shared.consumer import IdempotentConsumer, ReceivedEvent
from unified_shared.db import SHARED_COMPONENT, apply_migrations, create_pool
from unified_shared.events import AccountEvent, event_type
from unified_shared.kafka import make_consumer, make_producer
from unified_shared.local_secrets import use_local_admin_login
from unified_shared.outbox import OutboxRelay
from unified_shared.topics import TopicSpec, create_topics

RUN = uuid.uuid4().hex[:8]
TOPIC = f"bench.plumbing.{RUN}"


@event_type
class Tick(AccountEvent):
    DOMAIN: ClassVar[str] = "bench"
    NAME: ClassVar[str] = f"Tick{RUN}"
    TOPIC: ClassVar[str] = TOPIC
    n: int


async def main(n: int) -> None:
    use_local_admin_login()  # the local broker wants SASL/SCRAM over TLS
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    admin = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
    db = f"bench_{RUN}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{db}"')
    await conn.close()
    dsn = admin.rsplit("/", 1)[0] + f"/{db}"
    await create_topics(kafka, [TopicSpec(TOPIC, 3), TopicSpec(f"{TOPIC}.dlq", 1)])
    pool = await create_pool(dsn, max_size=4)
    try:
        async with pool.acquire() as c:
            await apply_migrations(c, [SHARED_COMPONENT])
            await c.execute("CREATE TABLE ticks (n INT PRIMARY KEY)")
        accounts = [uuid.uuid4() for _ in range(50)]

        t0 = time.perf_counter()
        async with pool.acquire() as c:
            for i in range(n):
                async with c.transaction():
                    await eventstore.append(c, f"s-{i}", 0, [Tick(account_id=accounts[i % 50], n=i)])
        appended = time.perf_counter() - t0
        print(f"event store: {n} single-event commands in {appended:.2f} s = {n / appended:,.0f} appends/s")

        producer = make_producer(kafka, client_id="bench")
        await producer.start()
        relay = OutboxRelay(pool, producer, source="/services/bench", batch_size=500)
        t0 = time.perf_counter()
        while await relay.publish_once():
            pass
        relayed = time.perf_counter() - t0
        print(f"outbox relay: {n} events published in {relayed:.2f} s = {n / relayed:,.0f} events/s")

        async def apply(conn: asyncpg.Connection, received: ReceivedEvent) -> None:
            await conn.execute("INSERT INTO ticks (n) VALUES ($1)", received.event.n)  # type: ignore[attr-defined]

        kafka_consumer = make_consumer(kafka, group_id=f"bench-{RUN}", client_id="bench", topics=[])
        consumer = IdempotentConsumer(
            pool, kafka_consumer, producer, name=f"bench-{RUN}", topics=[TOPIC], handler=apply
        )
        consumer.subscribe()
        await kafka_consumer.start()
        t0 = time.perf_counter()
        while await pool.fetchval("SELECT count(*) FROM ticks") < n:
            await consumer.poll_once()
        consumed = time.perf_counter() - t0
        print(f"idempotent consumer: {n} events applied in {consumed:.2f} s = {n / consumed:,.0f} events/s")
        await kafka_consumer.stop()
        await producer.stop()
    finally:
        await pool.close()
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
