"""The outbox relay against aiokafka's send_batch with the same producer settings (make_producer), the
same records (value, key, CloudEvents headers), per partition."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import defaultdict

from bench.events import PARTITIONS, TOPIC, Tick
from bench.harness import Context, Figure, Target, benchmark, timed
from unified_shared import eventstore
from unified_shared.db import SHARED_COMPONENT, apply_migrations, create_pool
from unified_shared.kafka import make_producer
from unified_shared.outbox import OutboxRelay
from unified_shared.topics import TopicSpec, create_topics


async def _relay(ctx: Context, n: int) -> tuple[float, list[tuple[bytes, bytes, list[tuple[str, bytes]]]]]:
    pool = await create_pool(await ctx.database("bench_relay"), max_size=4)
    producer = make_producer(ctx.kafka, client_id="bench-relay")
    await producer.start()
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, [SHARED_COMPONENT])
            accounts = [uuid.uuid4() for _ in range(50)]
            for start in range(0, n, 500):
                async with conn.transaction():
                    await eventstore.append_streams(
                        conn,
                        [
                            eventstore.StreamAppend(f"s-{i}", 0, [Tick(account_id=accounts[i % 50], n=i)])
                            for i in range(start, min(n, start + 500))
                        ],
                    )
            head = await conn.fetchval("SELECT max(position) FROM event_store")
            rows = await conn.fetch("SELECT * FROM event_store ORDER BY position")
        relay = OutboxRelay(pool, producer, source="/services/bench", name="bench")
        records = [
            (
                json.dumps(r["payload"], separators=(",", ":"), sort_keys=True).encode(),
                r["partition_key"].encode(),
                relay.envelope(eventstore.row_to_stored(r)).to_headers(),
            )
            for r in rows
        ]
        async with timed() as elapsed:
            task = asyncio.create_task(relay.run())
            async with pool.acquire() as conn:
                while await relay.position(conn) < head:
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.005)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return n / elapsed(), records
    finally:
        await producer.stop()
        await pool.close()


async def _send_batch(ctx: Context, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> float:
    producer = make_producer(ctx.kafka, client_id="bench-raw")
    await producer.start()
    try:
        by_partition: dict[int, list[tuple[bytes, bytes, list[tuple[str, bytes]]]]] = defaultdict(list)
        for r in records:
            by_partition[hash(r[1]) % PARTITIONS].append(r)
        async with timed() as elapsed:
            futures = []
            for partition, items in by_partition.items():
                batch = producer.create_batch()
                for value, key, headers in items:
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        futures.append(await producer.send_batch(batch, TOPIC, partition=partition))
                        batch = producer.create_batch()
                        batch.append(key=key, value=value, timestamp=None, headers=headers)
                futures.append(await producer.send_batch(batch, TOPIC, partition=partition))
            await asyncio.gather(*futures)
        return len(records) / elapsed()
    finally:
        await producer.stop()


@benchmark("relay", "outbox relay vs aiokafka send_batch per partition, same producer settings and records")
async def relay_bench(ctx: Context) -> list[Figure]:
    await create_topics(ctx.kafka, [TopicSpec(TOPIC, PARTITIONS), TopicSpec(f"{TOPIC}.dlq", 1)])
    n = 5_000 if ctx.quick else 20_000
    project, records = await _relay(ctx, n)
    baseline = await _send_batch(ctx, records)
    return [Figure(f"outbox relay ({n:,} events)", "ev/s", project, baseline, "aiokafka send_batch", Target(ratio=0.5))]
