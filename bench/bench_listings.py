"""Time the re-pricing of 100,000 linked offers after one FX publication: the listings service's path (the
consumer's handler: latest rates, every link, source offer and participation read, each target priced by the
pure rule, the changed offers written and one OfferPriceChanged per offer appended to the event store, all in
one transaction) against a plain SQL UPDATE of the same rows (a new price computed in SQL, no events).

Run with PostgreSQL up (``make infra-up``): ``.venv/bin/python bench/bench_listings.py [N ...]``
(default 100000 linked offers: accounts x 25 US SKUs x 4 targets). Builds a scratch database, drops it after.
Prints figures; asserts nothing (it checks that every offer carries the new rate day, and says so).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
from unified_listings.app import MIGRATIONS
from unified_listings.handlers import apply_event

from unified_shared.consumer import ReceivedEvent
from unified_shared.contracts.listings import TargetRule
from unified_shared.contracts.regions import FxRatesPublished
from unified_shared.db import SHARED_COMPONENT, apply_migrations, connect
from unified_shared.envelope import Envelope

US = "ATVPDKIKX0DER"
TARGETS = [("A1PA6795UKMFR9", "EUR", ".99"), ("A1F83G8C2ARO7P", "GBP", ".99"), ("A1VC38T7YXB528", "JPY", "tens")]
TARGETS.append(("A2EUQ1WTGCTBG2", "CAD", ".95"))
SKUS_PER_ACCOUNT = 25


def fx_day(date: str, usd: str) -> FxRatesPublished:
    rates = {"USD": Decimal(usd), "GBP": Decimal("0.8600"), "JPY": Decimal("161.20"), "CAD": Decimal("1.5100")}
    return FxRatesPublished(date=dt.date.fromisoformat(date), rates=rates, source="bench")


async def apply(conn: asyncpg.Connection, event: FxRatesPublished) -> float:
    envelope = Envelope(
        id=uuid.uuid4(),
        source="/bench",
        type=event.ce_type(),
        time=dt.datetime.now(dt.UTC),
        subject="bench",
        partitionkey=event.partition_key(),
    )
    t0 = time.perf_counter()
    async with conn.transaction():
        await apply_event(conn, ReceivedEvent(envelope, event, event.TOPIC, 0, 0))
    return time.perf_counter() - t0


async def seed(conn: asyncpg.Connection, accounts: int) -> None:
    """Own US offers, one link US -> 4 targets per account, every target open with active listings."""
    ids = [uuid.uuid4() for _ in range(accounts)]
    own = [
        (a, f"SKU-{n:03d}", US, "own", "USD", Decimal(999 + 37 * n).scaleb(-2), 10, "Active", 1)
        for a in ids
        for n in range(SKUS_PER_ACCOUNT)
    ]
    await conn.copy_records_to_table(
        "offers",
        records=own,
        columns=["account_id", "sku", "marketplace_id", "kind", "currency", "price", "quantity", "status", "version"],
    )
    rules = [
        TargetRule(
            marketplace_id=m, currency=c, percent=Decimal(10), fixed=Decimal(0), ending=e, floor=Decimal(5)
        ).model_dump(mode="json")
        for m, c, e in TARGETS
    ]
    await conn.executemany(
        "INSERT INTO links (account_id, source_marketplace_id, sku, targets, version) VALUES ($1, $2, '*', $3, 1)",
        [(a, US, rules) for a in ids],
    )
    await conn.copy_records_to_table(
        "participations",
        records=[(a, m, "open", True) for a in ids for m, _, _ in [(US, "", ""), *TARGETS]],
        columns=["account_id", "marketplace_id", "status", "listings_active"],
    )


async def plain_update(conn: asyncpg.Connection, date: dt.date, factor_sql: str) -> tuple[float, int]:
    """The same rows re-priced by one UPDATE: converted x 1.1, rounded to the minor unit, no rule, no events."""
    t0 = time.perf_counter()
    async with conn.transaction():
        status = await conn.execute(
            f"""UPDATE offers SET price = round(source_price * ({factor_sql}) * 1.1, 2), fx_rate_date = $1,
                                  version = version + 1, updated_at = now()
                WHERE kind = 'linked'""",
            date,
        )
    return time.perf_counter() - t0, int(status.split()[-1])


async def one_size(admin: str, linked: int) -> dict[str, Any]:
    accounts = max(1, linked // (SKUS_PER_ACCOUNT * len(TARGETS)))
    db = f"bench_listings_{uuid.uuid4().hex[:8]}"
    c = await asyncpg.connect(admin)
    await c.execute(f'CREATE DATABASE "{db}"')
    await c.close()
    conn = await connect(admin.rsplit("/", 1)[0] + f"/{db}")
    try:
        await apply_migrations(conn, [SHARED_COMPONENT, *MIGRATIONS])
        await seed(conn, accounts)
        first = await apply(conn, fx_day("2026-11-02", "1.1000"))  # the first prices of every target
        await conn.execute("VACUUM ANALYZE offers")
        events_before = await conn.fetchval("SELECT count(*) FROM event_store")
        repriced = await apply(conn, fx_day("2026-11-03", "1.1220"))
        events = await conn.fetchval("SELECT count(*) FROM event_store") - events_before
        fresh = await conn.fetchval("SELECT count(*) FROM offers WHERE kind = 'linked' AND fx_rate_date = '2026-11-03'")
        baseline, rows = await plain_update(conn, dt.date(2026, 11, 4), "1.1")
        return {
            "linked": accounts * SKUS_PER_ACCOUNT * len(TARGETS),
            "first_s": first,
            "reprice_s": repriced,
            "events": events,
            "fresh": fresh,
            "update_s": baseline,
            "update_rows": rows,
        }
    finally:
        await conn.close()
        c = await asyncpg.connect(admin)
        await c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await c.close()


async def main(sizes: list[int]) -> None:
    admin = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:55432/postgres")
    print("re-pricing linked offers after one FX publication (one transaction each way)")
    print(
        f"{'offers':>8} {'listings offers/s':>18} {'(s)':>7} {'plain UPDATE rows/s':>20} {'(s)':>7}  events  all fresh"
    )
    for n in sizes:
        r = await one_size(admin, n)
        print(
            f"{r['linked']:>8} {r['linked'] / r['reprice_s']:>18,.0f} {r['reprice_s']:>7.2f}"
            f" {r['update_rows'] / r['update_s']:>20,.0f} {r['update_s']:>7.2f}"
            f"  {r['events']:>6}  {r['fresh'] == r['linked']}"
        )


if __name__ == "__main__":
    asyncio.run(main([int(a) for a in sys.argv[1:]] or [100_000]))
