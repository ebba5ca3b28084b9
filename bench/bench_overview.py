"""Time the seller view's overview for one account with many orders: the endpoint (reading the month and
day summaries) beside a plain SQL aggregate over the same orders and the per-order SQL it replaced.

Part of ``make bench`` (benchmark ``overview``: 10k, 100k and 1M orders, one account each, loaded once and
timed in each run; BENCH_OVERVIEW_SIZES=10000,100000 to skip 1M, whose loading takes about 2 minutes);
alone, with PostgreSQL up: ``.venv/bin/python -m bench.bench_overview [N ...]`` (default 10000 100000
1000000: flat is the goal, p99 < 50 ms at 1M). Builds a scratch database with the read model of one
generation, another account's orders around it, ~12 % of orders refunded, a year of daily rates; drops it
afterwards. Orders are loaded with COPY and their summaries with the consumer's own recompute statement
(summaries.refresh_days, a month of days per statement; the month sums follow in the same statements), not
event by event: loading 1M orders through Kafka would take too long here. A summary row holds every kept
reporting currency (arrays); the read takes its currency's element.
Prints figures; asserts nothing (it does check that the summaries give the JSON of the Python reference
(up to 100k orders) and of the per-order SQL, and says so).

The summaries' write cost: ``make bench`` also runs seller_view's projection over the read-side benchmark's
order events twice in one run, without the summaries' upkeep and with it, beside getmany + parse; alone:
``.venv/bin/python -m bench.bench_overview upkeep [N]``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import asyncpg

from bench import bench_read_side as read_side
from bench import overview_data as data
from bench.harness import Context, Figure, Target, benchmark
from unified_seller_view import overview_queries, summaries, timeseries
from unified_seller_view.generations import readmodel_ddl
from unified_seller_view.handlers import table_for
from unified_shared.db import SHARED_COMPONENT, apply_migrations, connect, create_pool
from unified_shared.topics import TopicSpec, create_topics


async def _time(
    conn: asyncpg.Connection, account: uuid.UUID, runs: int, *, in_python: bool = False, per_order: bool = False
) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(runs):
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            await conn.execute(f"SET LOCAL search_path TO {data.SCHEMA}, public")
            t0 = time.perf_counter()
            out = await overview_queries.overview(
                conn, overview_queries.OverviewQuery(account, "USD"), in_python=in_python, per_order=per_order
            )
            times.append(time.perf_counter() - t0)
    return times, out


async def _series(conn: asyncpg.Connection, account: uuid.UUID, runs: int, granularity: str) -> list[float]:
    """The time series endpoint's work over the whole year of orders (weeks read days; months read months)."""
    times = []
    for _ in range(runs):
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            await conn.execute(f"SET LOCAL search_path TO {data.SCHEMA}, public")
            t0 = time.perf_counter()
            await timeseries.timeseries(
                conn,
                account,
                marketplaces=None,
                reporting_currency="USD",
                granularity=granularity,
                first=data.START,
                last=data.START + timedelta(days=data.DAYS - 1),
            )
            times.append(time.perf_counter() - t0)
    return times


async def _plain(conn: asyncpg.Connection, account: uuid.UUID, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await conn.fetch(
            f"""SELECT marketplace_id, status, currency, count(*), sum(number_of_items), sum(amount)
                FROM {data.SCHEMA}.orders WHERE account_id = $1 GROUP BY 1, 2, 3""",
            account,
        )
        times.append(time.perf_counter() - t0)
    return times


def _ms(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@contextlib.asynccontextmanager
async def _scratch(admin: str) -> AsyncIterator[asyncpg.Connection]:
    """A scratch database with the read model of one generation, a year of rates and a neighbour's orders."""
    db = f"bench_overview_{uuid.uuid4().hex[:8]}"
    c = await asyncpg.connect(admin)
    await c.execute(f'CREATE DATABASE "{db}"')
    await c.close()
    conn = await connect(admin.rsplit("/", 1)[0] + f"/{db}")
    try:
        await data.prepare(conn)
        yield conn
    finally:
        await conn.close()
        c = await asyncpg.connect(admin)
        await c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await c.close()


@contextlib.contextmanager
def _heap_frozen() -> Iterator[None]:
    """Timings of the queries, not of this process's collector: the bench holds the generated orders and every
    earlier benchmark's objects (a service holds none of them and freezes its start-up heap), and a full
    collection over them (~20 ms here) would land in the p99. Frozen while timing, as a service's heap is."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _measure(
    conn: asyncpg.Connection, account: uuid.UUID, n: int, runs: int = 100, check: bool = True
) -> dict[str, Any]:
    """Figures for an account with ``n`` orders: overview p50/p99, plain aggregate, per-order SQL (all ms) and,
    with ``check``, whether the summaries gave the JSON of the per-order SQL and (up to 100k) the reference."""
    await _time(conn, account, 3)  # warm the cache
    with _heap_frozen():
        fast, got = await _time(conn, account, runs)
        plain = await _plain(conn, account, 5)
        weeks = await _series(conn, account, runs // 2, "week")
        months = await _series(conn, account, runs // 2, "month")
    out = {
        "p50": _ms(fast, 0.5),
        "p99": _ms(fast, 0.99),
        "plain": statistics.median(plain) * 1000,
        "weeks_p99": _ms(weeks, 0.99),
        "months_p99": _ms(months, 0.99),
    }
    if check:
        slow, old = await _time(conn, account, 3, per_order=True)
        same = json.dumps(old, sort_keys=True) == json.dumps(got, sort_keys=True)
        if n <= 100_000:
            _, ref = await _time(conn, account, 1, in_python=True)
            same = same and json.dumps(ref, sort_keys=True) == json.dumps(got, sort_keys=True)
        out |= {"per_order": statistics.median(slow) * 1000, "same": same}
    return out


async def _project(pool: asyncpg.Pool, kafka: str, n: int, schema: str, keep: bool) -> float:
    """seller_view's projection (its real handler table) into ``schema``, with or without the summaries' upkeep
    (without: what the projection cost before them), in events/s."""
    await _in_pool(
        pool, f"CREATE SCHEMA {schema}; SET search_path TO {schema}, public; {readmodel_ddl()}; RESET search_path"
    )
    saved = summaries.upkeep_enabled
    summaries.upkeep_enabled = keep
    try:
        name = f"bench-view-{uuid.uuid4().hex[:8]}"
        return n / await read_side._consume(pool, kafka, n, name, table_for(schema))
    finally:
        summaries.upkeep_enabled = saved


async def _in_pool(pool: asyncpg.Pool, sql: str) -> None:
    """Statements on one connection (a SET and its RESET stay together)."""
    async with pool.acquire() as c:
        await c.execute(sql)


async def measure_upkeep(kafka: str, dsn: str, n: int) -> tuple[float, float, float]:
    """(getmany + parse, projection without summaries, projection with them) in events/s, one topic, one run."""
    await create_topics(
        kafka, [TopicSpec(read_side.TOPIC, read_side.PARTITIONS), TopicSpec(f"{read_side.TOPIC}.dlq", 1)]
    )
    pool = await create_pool(dsn, max_size=8)
    try:
        async with pool.acquire() as c:
            await apply_migrations(c, [SHARED_COMPONENT])
        await read_side._produce(kafka, read_side._events(n))
        base = n / await read_side._raw(kafka, n, parse=True)
        without = await _project(pool, kafka, n, "view_0", keep=False)
        with_ = await _project(pool, kafka, n, "view_1", keep=True)
        return base, without, with_
    finally:
        await pool.close()


def _sizes(quick: bool) -> list[int]:
    """Orders per account measured by ``make bench``: BENCH_OVERVIEW_SIZES (comma-separated) or 10k, 100k, 1M
    (10k with --quick). Loading 1M takes about 2 minutes here (COPY, then the summaries' own statements)."""
    given = os.environ.get("BENCH_OVERVIEW_SIZES")
    if given:
        return [int(x) for x in given.split(",") if x.strip()]
    return [10_000] if quick else [10_000, 100_000, 1_000_000]


# The scratch database and its loaded accounts, per (server, quick), kept across the runner's runs (loading
# 1M orders once, not once per run; the runner drops its own databases after each run, so this one is ours)
# and dropped when the process exits.
_LOADED: dict[tuple[str, bool], tuple[str, list[tuple[int, uuid.UUID, dict[str, Any]]]]] = {}


def _drop_at_exit(admin: str, db: str) -> None:
    async def drop() -> None:
        c = await asyncpg.connect(admin)
        try:
            await c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await c.close()

    asyncio.run(drop())


async def _loaded(ctx: Context) -> tuple[str, list[tuple[int, uuid.UUID, dict[str, Any]]]]:
    key = (ctx.pg_admin_dsn, ctx.quick)
    if key not in _LOADED:
        db = f"bench_overview_{uuid.uuid4().hex[:8]}"
        c = await asyncpg.connect(ctx.pg_admin_dsn)
        try:
            await c.execute(f'CREATE DATABASE "{db}"')
        finally:
            await c.close()
        atexit.register(_drop_at_exit, ctx.pg_admin_dsn, db)
        dsn = ctx.pg_admin_dsn.rsplit("/", 1)[0] + f"/{db}"
        conn = await connect(dsn)
        try:
            await data.prepare(conn)
            accounts = []
            for i, n in enumerate(_sizes(ctx.quick), start=1):
                account, copied, summarized = await data.load(conn, n, seed=i)
                checked = await _measure(conn, account, n, runs=3, check=True)  # the JSON checks, once
                accounts.append((n, account, {"load_s": copied + summarized, **checked}))
        finally:
            await conn.close()
        _LOADED[key] = (dsn, accounts)
    return _LOADED[key]


@benchmark("overview", "seller_view overview for one account: month/day summaries vs a plain SQL aggregate of orders")
async def overview_bench(ctx: Context) -> list[Figure]:
    dsn, accounts = await _loaded(ctx)
    figures = []
    conn = await connect(dsn)
    try:
        measured = [
            await _measure(conn, account, n, runs=30 if ctx.quick else 100, check=False) for n, account, _ in accounts
        ]
    finally:
        await conn.close()
    for (n, _, once), f in zip(accounts, measured, strict=True):
        figures.append(
            Figure(
                f"seller_view overview, {n:,} orders{'' if once['same'] else ' (JSON DIFFERS)'}",
                "q/s (1/p99)",
                1000 / f["p99"],
                1000 / f["plain"],
                "plain SQL aggregate (median)",
                Target(value=20),  # p99 < 50 ms
                extra={
                    "p50 ms": f["p50"],
                    "p99 ms": f["p99"],
                    "plain SQL ms": f["plain"],
                    "per-order SQL ms": once["per_order"],
                    "series by week (a year) p99 ms": f["weeks_p99"],
                    "series by month (a year) p99 ms": f["months_p99"],
                    "load s": once["load_s"],
                },
            )
        )
    events = 5_000 if ctx.quick else 20_000
    base, without, with_ = await measure_upkeep(ctx.kafka, await ctx.database("bench_upkeep"), events)
    baseline = "aiokafka getmany + envelope + parse"
    return [
        *figures,
        Figure(
            f"seller_view projection without day summaries ({events:,} order events)", "ev/s", without, base, baseline
        ),
        Figure(
            f"seller_view projection with day summaries ({events:,} order events)",
            "ev/s",
            with_,
            base,
            baseline,
            Target(ratio=0.3),
        ),
    ]


async def main(sizes: list[int]) -> None:
    admin = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
    async with _scratch(admin) as conn:
        print(f"PostgreSQL {conn.get_server_version().major}, reporting currency USD")
        print(
            f"{'orders':>9} {'COPY':>7} {'summarize':>10} {'overview p50':>13} {'p99':>8} {'plain SQL agg':>14} "
            f"{'per-order SQL':>14}  same JSON  series p99: by week, by month (a year)"
        )
        for i, n in enumerate(sizes, start=1):
            account, copied, summarized = await data.load(conn, n, seed=i)
            f = await _measure(conn, account, n)
            print(
                f"{n:>9} {copied:>5.1f} s {summarized:>8.1f} s {f['p50']:>10.1f} ms {f['p99']:>5.1f} ms "
                f"{f['plain']:>11.0f} ms {f['per_order']:>11.0f} ms  {f['same']!s:>9}  "
                f"{f['weeks_p99']:>5.1f} ms, {f['months_p99']:.1f} ms",
                flush=True,
            )


async def main_upkeep(n: int) -> None:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    admin = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
    db = f"bench_upkeep_{uuid.uuid4().hex[:8]}"
    c = await asyncpg.connect(admin)
    await c.execute(f'CREATE DATABASE "{db}"')
    await c.close()
    try:
        base, without, with_ = await measure_upkeep(kafka, admin.rsplit("/", 1)[0] + f"/{db}", n)
        print(
            f"{n} order events: getmany + parse {base:,.0f} ev/s; projection without summaries {without:,.0f} "
            f"(ratio {without / base:.3f}), with them {with_:,.0f} (ratio {with_ / base:.3f})"
        )
    finally:
        c = await asyncpg.connect(admin)
        await c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await c.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["upkeep"]:
        from unified_shared.local_secrets import use_local_admin_login

        use_local_admin_login()  # the local broker wants SASL: benchmarks log in as its admin
        asyncio.run(main_upkeep(int(sys.argv[2]) if len(sys.argv) > 2 else 20_000))
    else:
        asyncio.run(main([int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]))
