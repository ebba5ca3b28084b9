"""The consumer's own model (sales per account, marketplace and currency) and the record of applied
``ce_id``s, changed in one PostgreSQL transaction: a redelivered or replayed event changes nothing."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from unified_shared.contracts.orders import OrderPlaced, OrderRefunded, OrderStatusChanged
from unified_shared.events import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS applied_events (
    ce_id uuid PRIMARY KEY,
    ce_type text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS dead_letters (
    topic text NOT NULL,
    partition int NOT NULL,
    "offset" bigint NOT NULL,
    reason text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset")
);
CREATE TABLE IF NOT EXISTS sales (
    account_id uuid NOT NULL,
    marketplace_id text NOT NULL,
    currency text NOT NULL,
    orders bigint NOT NULL DEFAULT 0,
    gross numeric NOT NULL DEFAULT 0,
    refunded numeric NOT NULL DEFAULT 0,
    canceled bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, marketplace_id, currency)
);
"""


async def migrate(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)


async def was_dead_lettered(pool: asyncpg.Pool, topic: str, partition: int, offset: int) -> bool:
    return bool(
        await pool.fetchval(
            'SELECT true FROM dead_letters WHERE topic = $1 AND partition = $2 AND "offset" = $3',
            topic,
            partition,
            offset,
        )
    )


async def mark_dead_lettered(pool: asyncpg.Pool, topic: str, partition: int, offset: int, reason: str) -> None:
    """Recorded after the DLQ write succeeded, so a replay (or a new group) does not dead-letter it again."""
    await pool.execute(
        "INSERT INTO dead_letters VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", topic, partition, offset, reason
    )


async def apply_once(pool: asyncpg.Pool, ce_id: str, event: Event) -> bool:
    """Apply ``event`` unless its ``ce_id`` was applied before; True when it changed the model."""
    async with pool.acquire() as conn, conn.transaction():
        claimed = await conn.fetchval(
            "INSERT INTO applied_events (ce_id, ce_type) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
            ce_id,
            event.ce_type(),
        )
        if not claimed:
            return False
        await _apply(conn, event)
        return True


async def _apply(conn: asyncpg.Connection, event: Event) -> None:
    if isinstance(event, OrderPlaced):
        await conn.execute(
            """INSERT INTO sales (account_id, marketplace_id, currency, orders, gross) VALUES ($1, $2, $3, 1, $4)
               ON CONFLICT (account_id, marketplace_id, currency)
               DO UPDATE SET orders = sales.orders + 1, gross = sales.gross + EXCLUDED.gross""",
            event.account_id,
            event.marketplace_id,
            event.order_total.currency_code,
            Decimal(event.order_total.amount),
        )
    elif isinstance(event, OrderRefunded):
        await conn.execute(
            """INSERT INTO sales (account_id, marketplace_id, currency, refunded) VALUES ($1, $2, $3, $4)
               ON CONFLICT (account_id, marketplace_id, currency)
               DO UPDATE SET refunded = sales.refunded + EXCLUDED.refunded""",
            event.account_id,
            event.marketplace_id,
            event.amount.currency_code,
            Decimal(event.amount.amount),
        )
    elif isinstance(event, OrderStatusChanged) and event.to_status == "Canceled":
        await conn.execute(
            "UPDATE sales SET canceled = canceled + 1 WHERE account_id = $1 AND marketplace_id = $2",
            event.account_id,
            event.marketplace_id,
        )
