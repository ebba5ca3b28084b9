"""Two partitions' batches touching the same account's day at once (an account's orders come through a topic
per region, applied by concurrent transactions): the later one waits for the earlier one's account lock and
recomputes the day with both's orders; neither fails nor loses the other's orders."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from unified_seller_view import summaries
from unified_seller_view.handlers import table_for
from unified_shared.contracts import orders
from unified_shared.db import connect

from .support import DE, US, as_received, create_readmodels

SCHEMA = "sums"
AT = datetime(2026, 9, 3, 10, tzinfo=UTC)


def _placed(account: uuid.UUID, n: int, market: str, currency: str, region: str) -> orders.OrderPlaced:
    return orders.OrderPlaced(
        account_id=account,
        marketplace_id=market,
        amazon_order_id=f"{n:03d}-0000000-0000000",
        region=region,  # type: ignore[arg-type]
        purchase_date=AT + timedelta(minutes=n),
        last_update_date=AT + timedelta(minutes=n),
        order_status="Shipped",
        fulfillment_channel="MFN",
        order_total=orders.Money(currency_code=currency, amount=Decimal("10.00") + n),
        number_of_items=1,
    )


async def _rows(conn: asyncpg.Connection) -> list[str]:
    sql = f"SELECT row_to_json(s)::text AS j FROM {SCHEMA}.order_day_summaries s ORDER BY 1"
    return [r["j"] for r in await conn.fetch(sql)]


async def _waiting(conn: asyncpg.Connection, pid: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if await conn.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the second batch never waited for the first")


async def test_concurrent_batches_of_one_account_keep_both_orders(fresh_db: str) -> None:
    account = uuid.uuid4()
    a, b, watcher = await connect(fresh_db), await connect(fresh_db), await connect(fresh_db)
    try:
        await create_readmodels(a, SCHEMA)
        table = table_for(SCHEMA)
        first, na, eu = as_received(
            [
                _placed(account, 1, US, "USD", "NA"),
                _placed(account, 2, US, "USD", "NA"),
                _placed(account, 3, DE, "EUR", "EU"),
            ]
        )
        async with a.transaction():
            await table.apply(a, [first])  # the day has summary rows already
        tx_a = a.transaction()
        await tx_a.start()
        await table.apply(a, [na])  # NA's partition: recomputes the day, not committed yet

        async def second() -> None:
            async with b.transaction():
                await table.apply(b, [eu])  # EU's partition, same account and day

        task = asyncio.create_task(second())
        await _waiting(watcher, b.get_server_pid())
        await tx_a.commit()
        await asyncio.wait_for(task, 30)  # without the account lock: a duplicate key on the day's rows

        kept = await _rows(a)
        async with a.transaction():
            await a.execute(f"SET LOCAL search_path TO {SCHEMA}, public")
            await summaries.refresh_all(a)
        assert await _rows(a) == kept  # kept == recomputed from scratch: all three orders
        usd = await a.fetchval(
            f"""SELECT sum(n) FROM {SCHEMA}.order_day_summaries
                WHERE account_id = $1 AND kind = 'order'""",
            account,
        )
        assert usd == 3
    finally:
        for conn in (a, b, watcher):
            await conn.close()
