"""Time the seller view's overview for one account with many orders: the Python reference (every order
loaded and converted in Python) against the SQL aggregation the endpoint uses.

Part of ``make bench`` (benchmark ``overview``: one size, the SQL figure beside the Python reference);
alone, with PostgreSQL up: ``.venv/bin/python -m bench.bench_overview [N ...]`` (default 20000 100000).
Builds a scratch database with the read model of one generation, another account's orders around it,
~12 % of orders refunded, a year of daily rates; drops it afterwards.
Prints figures; asserts nothing (it does check that both ways give the same JSON, and says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from bench.harness import Context, Figure, benchmark
from unified_seller_view import queries
from unified_seller_view.generations import readmodel_ddl
from unified_shared.db import connect

SCHEMA = "view_1"
MARKETS = [
    ("ATVPDKIKX0DER", "USD", "NA"),
    ("A1PA6795UKMFR9", "EUR", "EU"),
    ("A13V1IB3VIYZZH", "EUR", "EU"),
    ("A1F83G8C2ARO7P", "GBP", "EU"),
    ("A1VC38T7YXB528", "JPY", "FE"),
    ("A2VIGQ35RCS4UG", "AED", "EU"),  # no ECB rate: unconverted
]
BASE_RATES = {"USD": 1.10, "GBP": 0.86, "JPY": 160.0, "SEK": 11.3, "PLN": 4.3}
START = date(2025, 10, 1)
DAYS = 365
STATUSES = ["Shipped"] * 8 + ["Unshipped", "Pending", "Canceled"]


async def _rates(conn: asyncpg.Connection) -> None:
    rng = random.Random(7)
    days = [START + timedelta(days=i) for i in range(DAYS) if (START + timedelta(days=i)).weekday() < 5]
    await conn.executemany(
        f"INSERT INTO {SCHEMA}.fx_days (date, revision, source, derived) VALUES ($1, 1, 'bench', '{{}}'::jsonb)",
        [(d,) for d in days],
    )
    rows = []
    for d in days:
        for currency, base in BASE_RATES.items():
            rate = Decimal(str(round(base * (1 + rng.uniform(-0.03, 0.03)), 4 if base < 100 else 2)))
            rows.append((currency, d, rate))
    await conn.copy_records_to_table("fx_rates", records=rows, schema_name=SCHEMA)


async def _orders(conn: asyncpg.Connection, account: uuid.UUID, n: int, seed: int) -> None:
    rng = random.Random(seed)
    prices = [Decimal(rng.randint(199, 19999)).scaleb(-2) for _ in range(400)]  # a catalogue
    orders, refunds = [], []
    for i in range(n):
        market, currency, region = rng.choice(MARKETS)
        purchased = datetime(2025, 10, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, DAYS * 86400 - 1))
        qty = rng.choice([1, 1, 1, 2, 3])
        amount = sum((rng.choice(prices) for _ in range(qty)), Decimal(0))
        if currency == "JPY":
            amount = (amount * 100).quantize(Decimal(1))
        oid = f"{seed:03d}-{i:07d}"
        orders.append(
            (
                account,
                oid,
                market,
                region,
                purchased,
                purchased,
                rng.choice(STATUSES),
                "MFN",
                currency,
                amount,
                qty,
                0,
                0,
            )
        )
        if rng.random() < 0.12:
            refunds.append((account, uuid.UUID(int=rng.getrandbits(128)), oid, currency, amount / 2, purchased))
    await conn.copy_records_to_table("orders", records=orders, schema_name=SCHEMA)
    await conn.copy_records_to_table("order_refunds", records=refunds, schema_name=SCHEMA)


async def _time(conn: asyncpg.Connection, account: uuid.UUID, in_python: bool, runs: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            await conn.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
            t0 = time.perf_counter()
            out = await queries.overview(
                conn, account, marketplaces=None, reporting_currency="USD", in_python=in_python
            )
            times.append(time.perf_counter() - t0)
    return statistics.median(times), out


@contextlib.asynccontextmanager
async def _scratch(admin: str) -> AsyncIterator[asyncpg.Connection]:
    """A scratch database with the read model of one generation, a year of rates and a neighbour's orders."""
    db = f"bench_overview_{uuid.uuid4().hex[:8]}"
    c = await asyncpg.connect(admin)
    await c.execute(f'CREATE DATABASE "{db}"')
    await c.close()
    conn = await connect(admin.rsplit("/", 1)[0] + f"/{db}")
    try:
        await conn.execute(f"CREATE SCHEMA {SCHEMA}")
        await conn.execute(f"SET search_path TO {SCHEMA}, public")
        await conn.execute(readmodel_ddl())
        await conn.execute("RESET search_path")
        await _rates(conn)
        await _orders(conn, uuid.uuid4(), 50_000, seed=0)  # a neighbour: its rows interleave with ours
        yield conn
    finally:
        await conn.close()
        c = await asyncpg.connect(admin)
        await c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await c.close()


async def _measure(conn: asyncpg.Connection, n: int, seed: int) -> tuple[float, float, bool]:
    """(python seconds, sql seconds, same JSON) for an account with ``n`` orders."""
    account = uuid.uuid4()
    await _orders(conn, account, n, seed=seed)
    await conn.execute(f"VACUUM ANALYZE {SCHEMA}.orders")
    await conn.execute(f"VACUUM ANALYZE {SCHEMA}.order_refunds")
    await _time(conn, account, False, 1)  # warm the cache
    before, ref = await _time(conn, account, True, 3)
    after, got = await _time(conn, account, False, 5)
    return before, after, json.dumps(ref, sort_keys=True) == json.dumps(got, sort_keys=True)


@benchmark("overview", "seller_view overview for one account: SQL aggregation vs the Python reference")
async def overview_bench(ctx: Context) -> list[Figure]:
    n = 5_000 if ctx.quick else 20_000
    async with _scratch(ctx.pg_admin_dsn) as conn:
        before, after, same = await _measure(conn, n, seed=1)
    return [
        Figure(
            f"seller_view overview, {n:,} orders{'' if same else ' (JSON DIFFERS)'}",
            "q/s",
            1 / after,
            1 / before,
            "Python reference (before)",
            extra={"sql ms": after * 1000, "python ms": before * 1000},
        )
    ]


async def main(sizes: list[int]) -> None:
    admin = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
    async with _scratch(admin) as conn:
        print(f"PostgreSQL {conn.get_server_version().major}, reporting currency USD, median of runs")
        print(f"{'orders':>8} {'python (before)':>16} {'sql (after)':>12} {'speed-up':>9}  same JSON")
        for i, n in enumerate(sizes, start=1):
            before, after, same = await _measure(conn, n, seed=i)
            print(f"{n:>8} {before * 1000:>13.0f} ms {after * 1000:>9.0f} ms {before / after:>8.1f}x  {same}")


if __name__ == "__main__":
    asyncio.run(main([int(a) for a in sys.argv[1:]] or [20_000, 100_000]))
