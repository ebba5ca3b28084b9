"""The read side against the broker's own speed, on this machine, in one run on the same topic:

- raw: aiokafka getmany alone, then getmany + envelope + pydantic parse (what no consumer can beat);
- the shared idempotent consumer with a set-based handler (claims, offsets, one INSERT per batch);
- seller_view's projection (its real handler table) applying order events into a fresh generation schema.

Ratios are against getmany + parse. Run with Kafka and PostgreSQL up (``make infra-up``):
``.venv/bin/python bench/bench_read_side.py [N]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from bench.harness import Context, Figure, Target, benchmark
from unified_seller_view.generations import readmodel_ddl
from unified_seller_view.handlers import table_for
from unified_shared.consumer import HandlerTable, IdempotentConsumer, ReceivedEvent
from unified_shared.contracts import orders
from unified_shared.db import SHARED_COMPONENT, apply_migrations, create_pool
from unified_shared.envelope import Envelope
from unified_shared.events import Event, model_for
from unified_shared.kafka import make_consumer, make_producer
from unified_shared.topics import TopicSpec, create_topics

RUN = uuid.uuid4().hex[:8]
TOPIC = f"bench.readside.{RUN}"
PARTITIONS = 6
MARKETS = [("ATVPDKIKX0DER", "USD", "NA"), ("A1PA6795UKMFR9", "EUR", "EU"), ("A1F83G8C2ARO7P", "GBP", "EU")]


def _events(n: int) -> list[Event]:
    """Order events of 200 accounts: ~60% placed, ~30% status changes, ~10% refunds (of placed orders)."""
    rng = random.Random(7)
    accounts = [uuid.uuid4() for _ in range(200)]
    placed: list[orders.OrderPlaced] = []
    out: list[Event] = []
    t0 = datetime(2026, 9, 1, tzinfo=UTC)
    while len(out) < n:
        pick = rng.random()
        if pick < 0.6 or not placed:
            market, currency, region = rng.choice(MARKETS)
            when = t0 + timedelta(minutes=len(out))
            o = orders.OrderPlaced(
                account_id=rng.choice(accounts),
                marketplace_id=market,
                amazon_order_id=f"{len(out):03d}-{rng.randint(0, 9999999):07d}-{rng.randint(0, 9999999):07d}",
                region=region,  # type: ignore[arg-type]
                purchase_date=when,
                last_update_date=when,
                order_status="Unshipped",
                fulfillment_channel="MFN",
                order_total=orders.Money(currency_code=currency, amount=Decimal(rng.randint(100, 99999)) / 100),
                number_of_items=1,
                number_of_items_unshipped=1,
            )
            placed.append(o)
            out.append(o)
            continue
        o = rng.choice(placed)
        later = o.last_update_date + timedelta(hours=rng.randint(1, 48))
        if pick < 0.9:
            out.append(
                orders.OrderStatusChanged(
                    account_id=o.account_id,
                    marketplace_id=o.marketplace_id,
                    amazon_order_id=o.amazon_order_id,
                    region=o.region,
                    from_status="Unshipped",
                    to_status="Shipped",
                    last_update_date=later,
                )
            )
        else:
            out.append(
                orders.OrderRefunded(
                    account_id=o.account_id,
                    marketplace_id=o.marketplace_id,
                    amazon_order_id=o.amazon_order_id,
                    region=o.region,
                    amount=orders.Money(currency_code=o.order_total.currency_code, amount=Decimal("1.00")),
                    refunded_at=later,
                    last_update_date=later,
                )
            )
    return out


async def _produce(kafka: str, events: Sequence[Event]) -> None:
    producer = make_producer(kafka, client_id="bench-readside")
    await producer.start()
    try:
        futures = []
        for i, e in enumerate(events):
            env = Envelope(
                id=uuid.uuid4(),
                source="/services/bench",
                type=e.ce_type(),
                time=datetime.now(UTC),
                subject="bench",
                partitionkey=e.partition_key(),
                sequence=i,
            )
            futures.append(
                await producer.send(
                    TOPIC, value=e.to_json_bytes(), key=e.partition_key().encode(), headers=env.to_headers()
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _raw(kafka: str, n: int, parse: bool) -> float:
    consumer = make_consumer(kafka, group_id=f"bench-raw-{uuid.uuid4().hex[:6]}", client_id="bench", topics=[TOPIC])
    await consumer.start()
    try:
        seen = 0
        t0 = time.perf_counter()
        while seen < n:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                for r in records:
                    if parse:
                        env = Envelope.from_headers(r.headers or [])
                        model = model_for(env.type)
                        assert model is not None
                        model.model_validate_json(r.value or b"")
                    seen += 1
        return time.perf_counter() - t0
    finally:
        await consumer.stop()


async def _consume(pool: asyncpg.Pool, kafka: str, n: int, name: str, table: HandlerTable) -> float:
    producer = make_producer(kafka, client_id="bench-dlq")
    await producer.start()
    kafka_consumer = make_consumer(kafka, group_id=name, client_id="bench", topics=[])
    consumer = IdempotentConsumer(pool, kafka_consumer, producer, name=name, topics=[TOPIC], handlers=table)
    consumer.subscribe()
    await kafka_consumer.start()
    try:
        t0 = time.perf_counter()
        while consumer.applied_events < n:
            await consumer.poll_once()
        return time.perf_counter() - t0
    finally:
        await kafka_consumer.stop()
        await producer.stop()


async def _ticks(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
    await conn.execute(
        "INSERT INTO ticks (id) SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING", [r.event_id for r in events]
    )


async def measure(kafka: str, dsn: str, n: int) -> tuple[float, float, float]:
    """(getmany + parse, shared consumer, seller_view projection) in events/s, on a fresh database."""
    await create_topics(kafka, [TopicSpec(TOPIC, PARTITIONS), TopicSpec(f"{TOPIC}.dlq", 1)])
    pool = await create_pool(dsn, max_size=8)
    try:
        async with pool.acquire() as c:
            await apply_migrations(c, [SHARED_COMPONENT])
            await c.execute("CREATE TABLE ticks (id UUID PRIMARY KEY)")
            await c.execute("CREATE SCHEMA view_1")
            await c.execute("SET search_path TO view_1, public")
            await c.execute(readmodel_ddl())
            await c.execute("RESET search_path")
        await _produce(kafka, _events(n))
        base = n / await _raw(kafka, n, parse=True)
        shared = n / await _consume(
            pool,
            kafka,
            n,
            f"bench-shared-{uuid.uuid4().hex[:8]}",
            HandlerTable(
                default=None,
                by_type={orders.OrderPlaced: _ticks, orders.OrderStatusChanged: _ticks, orders.OrderRefunded: _ticks},
            ),
        )
        projection = n / await _consume(pool, kafka, n, f"bench-view-{uuid.uuid4().hex[:8]}", table_for("view_1"))
        return base, shared, projection
    finally:
        await pool.close()


@benchmark("read-side", "shared consumer and seller_view projection vs aiokafka getmany + envelope/pydantic parse")
async def read_side_bench(ctx: Context) -> list[Figure]:
    n = 5_000 if ctx.quick else 20_000
    base, shared, projection = await measure(ctx.kafka, await ctx.database("bench_read"), n)
    baseline = "aiokafka getmany + envelope + parse"
    return [
        Figure(f"shared idempotent consumer ({n:,} order events)", "ev/s", shared, base, baseline, Target(ratio=0.3)),
        Figure(f"seller_view projection ({n:,} order events)", "ev/s", projection, base, baseline, Target(ratio=0.3)),
    ]


async def main(n: int) -> None:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    admin = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
    db = f"bench_{RUN}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{db}"')
    await conn.close()
    try:
        base, shared, projection = await measure(kafka, admin.rsplit("/", 1)[0] + f"/{db}", n)
        print(f"read side on one topic of {PARTITIONS} partitions, {n} order events")
        print(f"  getmany + envelope + parse:      {base:>10,.0f} events/s  (the baseline)")
        print(f"  shared consumer (set-based):     {shared:>10,.0f} events/s  ratio {shared / base:.3f}")
        print(f"  seller_view projection:          {projection:>10,.0f} events/s  ratio {projection / base:.3f}")
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000))
