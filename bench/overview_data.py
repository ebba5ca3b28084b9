"""The overview benchmark's data: a scratch read model of one generation with a year of daily rates and
accounts of many orders, loaded with COPY and summarized by the consumer's own recompute statement
(summaries.refresh_days, a month of days per statement; the month sums follow in the same statements)."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg

from unified_seller_view import summaries
from unified_seller_view.generations import readmodel_ddl
from unified_seller_view.orders_store import ORDER_COLUMNS

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


async def rates(conn: asyncpg.Connection) -> None:
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
    await conn.copy_records_to_table("fx_rates", records=rows, columns=["currency", "date", "rate"], schema_name=SCHEMA)


# The orders' columns are the read model's own (orders_store): a row of the bench is a snapshot without a
# version (version_sequence and version_event_id NULL, as rows from before read-model step 006).
REFUND_COLUMNS = ["account_id", "event_id", "amazon_order_id", "currency", "amount", "refunded_at"]


async def orders(conn: asyncpg.Connection, account: uuid.UUID, n: int, seed: int) -> None:
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
                None,
                None,
            )
        )
        if rng.random() < 0.12:
            refunds.append((account, uuid.UUID(int=rng.getrandbits(128)), oid, currency, amount / 2, purchased))
    await conn.copy_records_to_table("orders", records=orders, columns=ORDER_COLUMNS, schema_name=SCHEMA)
    await conn.copy_records_to_table("order_refunds", records=refunds, columns=REFUND_COLUMNS, schema_name=SCHEMA)


async def summarize(conn: asyncpg.Connection, account: uuid.UUID) -> float:
    t0 = time.perf_counter()
    async with conn.transaction():
        await conn.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
        days = await conn.fetch(
            "SELECT DISTINCT (purchase_date AT TIME ZONE 'UTC')::date AS d FROM orders WHERE account_id = $1", account
        )
        keys = sorted((account, r["d"]) for r in days)
        for i in range(0, len(keys), 30):  # a month of days per statement
            await summaries.refresh_days(conn, keys[i : i + 30])
    return time.perf_counter() - t0


async def prepare(conn: asyncpg.Connection, neighbour_orders: int = 50_000) -> None:
    """The read model of one generation, a year of rates and a neighbour's orders."""
    await conn.execute(f"CREATE SCHEMA {SCHEMA}")
    await conn.execute(f"SET search_path TO {SCHEMA}, public")
    await conn.execute(readmodel_ddl())
    await conn.execute("RESET search_path")
    await rates(conn)
    neighbour = uuid.uuid4()
    await orders(conn, neighbour, neighbour_orders, seed=0)  # a neighbour: its rows interleave with ours
    await summarize(conn, neighbour)


async def load(conn: asyncpg.Connection, n: int, seed: int) -> tuple[uuid.UUID, float, float]:
    """An account with ``n`` orders: (account, seconds to COPY its orders, seconds to summarize them)."""
    account = uuid.uuid4()
    t0 = time.perf_counter()
    await orders(conn, account, n, seed=seed)
    copied = time.perf_counter() - t0
    summarized = await summarize(conn, account)
    for table in ("orders", "order_refunds", "order_day_summaries", "order_month_summaries", "order_day_lookups"):
        await conn.execute(f"VACUUM ANALYZE {SCHEMA}.{table}")
    await conn.execute("CHECKPOINT")  # the load's writes flushed now, not during the timings
    return account, copied, summarized
