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


async def upsert_order(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO orders (account_id, amazon_order_id, marketplace_id, region, purchase_date, last_update_date,
               status, fulfillment_channel, currency, amount, number_of_items, items_shipped, items_unshipped,
               version_sequence, version_event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
           ON CONFLICT (account_id, amazon_order_id) DO UPDATE SET marketplace_id = EXCLUDED.marketplace_id,
               region = EXCLUDED.region, purchase_date = EXCLUDED.purchase_date,
               last_update_date = EXCLUDED.last_update_date, status = EXCLUDED.status,
               fulfillment_channel = EXCLUDED.fulfillment_channel, currency = EXCLUDED.currency,
               amount = EXCLUDED.amount, number_of_items = EXCLUDED.number_of_items,
               items_shipped = EXCLUDED.items_shipped, items_unshipped = EXCLUDED.items_unshipped,
               version_sequence = EXCLUDED.version_sequence, version_event_id = EXCLUDED.version_event_id""",
        row["account_id"],
        row["amazon_order_id"],
        row["marketplace_id"],
        row["region"],
        row["purchase_date"],
        row["last_update_date"],
        row["status"],
        row["fulfillment_channel"],
        row["currency"],
        row["amount"],
        row["number_of_items"],
        row["items_shipped"],
        row["items_unshipped"],
        row["version_sequence"],
        row["version_event_id"],
    )


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
