"""Event-store appends against asyncpg's executemany of the same rows, both in one transaction; and
single-event commands on 8 connections against plain one-row transactions (what the append lock costs)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import asyncpg

from bench.events import Tick
from bench.harness import Context, Figure, Target, benchmark, timed
from unified_shared import eventstore
from unified_shared.db import SHARED_COMPONENT, apply_migrations, create_pool

CHUNK = 100  # events per append call (one command touching 100 streams, as a 100-order batch does)


async def _migrated_pool(ctx: Context, size: int) -> asyncpg.Pool:
    pool = await create_pool(await ctx.database("bench_es"), max_size=size)
    async with pool.acquire() as conn:
        await apply_migrations(conn, [SHARED_COMPONENT])
    return pool


def _ticks(n: int, offset: int = 0) -> list[Tick]:
    accounts = [uuid.uuid4() for _ in range(50)]
    return [Tick(account_id=accounts[i % 50], n=offset + i) for i in range(n)]


async def _append(pool: asyncpg.Pool, events: list[Tick]) -> float:
    async with pool.acquire() as conn, timed() as elapsed, conn.transaction():
        for start in range(0, len(events), CHUNK):
            chunk = events[start : start + CHUNK]
            await eventstore.append_streams(conn, [eventstore.StreamAppend(f"a-{e.n}", 0, [e]) for e in chunk])
    return len(events) / elapsed()


async def _executemany(pool: asyncpg.Pool, events: list[Tick]) -> float:
    now = datetime.now(UTC)
    rows = [
        (
            uuid.uuid4(),
            f"x-{e.n}",
            1,
            e.ce_type(),
            e.TOPIC,
            e.partition_key(),
            json.dumps(e.model_dump(mode="json")),
            now,
        )
        for e in events
    ]
    async with pool.acquire() as conn, timed() as elapsed, conn.transaction():
        await conn.executemany(
            """INSERT INTO event_store (event_id, stream_id, version, event_type, topic, partition_key, payload,
                                        occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8)""",
            rows,
        )
    return len(rows) / elapsed()


async def _commands(pool: asyncpg.Pool, seconds: float, clients: int, raw: bool) -> float:
    """Single-event commands, each its own transaction, on ``clients`` connections for ``seconds``."""
    done = 0
    stop = time.perf_counter() + seconds

    async def client(c: int) -> None:
        nonlocal done
        n = 0
        async with pool.acquire() as conn:
            while time.perf_counter() < stop:
                tick = Tick(account_id=uuid.uuid4(), n=n)
                async with conn.transaction():
                    if raw:
                        await conn.execute(
                            """INSERT INTO event_store (event_id, stream_id, version, event_type, topic,
                                                        partition_key, payload, occurred_at)
                               VALUES ($1, $2, 1, $3, $4, $5, $6::jsonb, now())""",
                            uuid.uuid4(),
                            f"r-{c}-{n}",
                            tick.ce_type(),
                            tick.TOPIC,
                            tick.partition_key(),
                            tick.model_dump(mode="json"),
                        )
                    else:
                        await eventstore.append(conn, f"c-{c}-{n}", 0, [tick])
                n += 1
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return done / (time.perf_counter() - started)


@benchmark("eventstore", "event-store append vs asyncpg executemany (one transaction); 8-connection commands")
async def eventstore_bench(ctx: Context) -> list[Figure]:
    n = 5_000 if ctx.quick else 20_000
    pool = await _migrated_pool(ctx, 9)
    try:
        await _append(pool, _ticks(500, offset=10**8))  # warm up the connection and the plan
        project = await _append(pool, _ticks(n))
        baseline = await _executemany(pool, _ticks(n))
        commands = await _commands(pool, ctx.seconds, 8, raw=False)
        raw_commands = await _commands(pool, ctx.seconds, 8, raw=True)
    finally:
        await pool.close()
    return [
        Figure(
            f"event-store append ({n:,} events, {CHUNK}/append)",
            "ev/s",
            project,
            baseline,
            "asyncpg executemany, 1 tx",
            Target(ratio=0.3),
        ),
        Figure(
            "single-event commands, 8 connections",
            "ev/s",
            commands,
            raw_commands,
            "one-row INSERT + commit, 8 conns",
        ),
    ]
