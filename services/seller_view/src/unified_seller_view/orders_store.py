"""SQL of the read model's orders, refunds and parked order events.
Like every read-model SQL module, each function runs on a connection whose search_path names
the generation's schema first (see ``generations.use_schema``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

# -- orders -----------------------------------------------------------------------------------------


async def get_order(conn: asyncpg.Connection, account_id: UUID, amazon_order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM orders WHERE account_id = $1 AND amazon_order_id = $2 FOR UPDATE", account_id, amazon_order_id
    )


# The columns an order snapshot sets, in table order (the key first), and what a newer snapshot overwrites (all
# but the key): the per-event upsert below and the batch path's (order_batches) are built from them.
ORDER_COLUMNS = (
    "account_id",
    "amazon_order_id",
    "marketplace_id",
    "region",
    "purchase_date",
    "last_update_date",
    "status",
    "fulfillment_channel",
    "currency",
    "amount",
    "number_of_items",
    "items_shipped",
    "items_unshipped",
    "version_sequence",
    "version_event_id",
)
ORDER_UPDATE_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in ORDER_COLUMNS[2:])
_UPSERT_ORDER = (
    f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) "
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(ORDER_COLUMNS) + 1))}) "
    f"ON CONFLICT (account_id, amazon_order_id) DO UPDATE SET {ORDER_UPDATE_SET}"
)


async def upsert_order(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    """Insert or overwrite the order's row; ``row`` has a value for each of ``ORDER_COLUMNS``."""
    await conn.execute(_UPSERT_ORDER, *(row[c] for c in ORDER_COLUMNS))


async def set_order_status(
    conn: asyncpg.Connection,
    account_id: UUID,
    amazon_order_id: str,
    *,
    status: str,
    last_update_date: datetime,
    items_shipped: int | None,
    items_unshipped: int | None,
    version_sequence: int | None,
    version_event_id: UUID,
) -> None:
    await conn.execute(
        """UPDATE orders SET status = $3, last_update_date = $4,
               items_shipped = coalesce($5, items_shipped), items_unshipped = coalesce($6, items_unshipped),
               version_sequence = $7, version_event_id = $8
           WHERE account_id = $1 AND amazon_order_id = $2""",
        account_id,
        amazon_order_id,
        status,
        last_update_date,
        items_shipped,
        items_unshipped,
        version_sequence,
        version_event_id,
    )


async def touch_order(
    conn: asyncpg.Connection,
    account_id: UUID,
    amazon_order_id: str,
    *,
    last_update_date: datetime,
    version_sequence: int | None,
    version_event_id: UUID,
) -> None:
    """The order's version moved to a newer event that changes nothing else (a refund)."""
    await conn.execute(
        """UPDATE orders SET last_update_date = $3, version_sequence = $4, version_event_id = $5
           WHERE account_id = $1 AND amazon_order_id = $2""",
        account_id,
        amazon_order_id,
        last_update_date,
        version_sequence,
        version_event_id,
    )


async def insert_refund(
    conn: asyncpg.Connection,
    account_id: UUID,
    event_id: UUID,
    *,
    amazon_order_id: str,
    currency: str,
    amount: Decimal,
    refunded_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO order_refunds (account_id, event_id, amazon_order_id, currency, amount, refunded_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        account_id,
        event_id,
        amazon_order_id,
        currency,
        amount,
        refunded_at,
    )


async def park_order_event(
    conn: asyncpg.Connection,
    account_id: UUID,
    event_id: UUID,
    *,
    amazon_order_id: str,
    event_type: str,
    last_update_date: datetime,
    sequence: int | None,
    payload: dict[str, Any],
) -> None:
    await conn.execute(
        """INSERT INTO parked_order_events (account_id, event_id, amazon_order_id, event_type, last_update_date,
               sequence, payload) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT DO NOTHING""",
        account_id,
        event_id,
        amazon_order_id,
        event_type,
        last_update_date,
        sequence,
        payload,
    )


async def take_parked(conn: asyncpg.Connection, account_id: UUID, amazon_order_id: str) -> list[asyncpg.Record]:
    """Remove and return the events held for an order, in the order they happened."""
    return await conn.fetch(
        """DELETE FROM parked_order_events WHERE account_id = $1 AND amazon_order_id = $2
           RETURNING event_id, event_type, last_update_date, sequence, payload""",
        account_id,
        amazon_order_id,
    )
