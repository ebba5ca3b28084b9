"""SQL of the read model's orders, refunds and parked order events.
Like every read-model SQL module, each function runs on a connection whose search_path names
the generation's schema first (see ``generations.use_schema``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view.order_versions import GROUPS, version_columns

# -- orders -----------------------------------------------------------------------------------------


async def get_order(conn: asyncpg.Connection, account_id: UUID, amazon_order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM orders WHERE account_id = $1 AND amazon_order_id = $2 FOR UPDATE", account_id, amazon_order_id
    )


# The columns an order snapshot carries, in table order (the key first): its fields and the row's version.
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
_KEY = ("account_id", "amazon_order_id")
_VERSION_TYPES = ("timestamptz", "bigint", "uuid")  # of a version's three columns
_TYPES = dict(
    zip(
        ORDER_COLUMNS,
        (
            *("uuid", "text", "text", "text", "timestamptz", "timestamptz", "text", "text", "text", "numeric"),
            *("int", "int", "int", "bigint", "uuid"),
        ),
        strict=True,
    )
) | {c: t for g in GROUPS for c, t in zip(version_columns(g), _VERSION_TYPES, strict=True)}


def _unnest(columns: tuple[str, ...], first: int = 1) -> str:
    """unnest($first::type[], ...) AS n(columns): one array a column."""
    arrays = ", ".join(f"${first + i}::{_TYPES[c]}[]" for i, c in enumerate(columns))
    return f"unnest({arrays}) AS n({', '.join(columns)})"


def _sql_version(table: str, group: str | None) -> str:
    """A version in SQL, as order_versions.of_row gives it (row comparison; uuid compares as UUID): a group
    without a version of its own is at the row's."""
    own = version_columns(group)
    if group is None:
        return f"({', '.join(_sql_part(table, i, c) for i, c in enumerate(own))})"
    row = version_columns(None)
    parts = (
        f"CASE WHEN {table}.{own[0]} IS NULL THEN {_sql_part(table, i, r)} ELSE {_sql_part(table, i, c)} END"
        for i, (c, r) in enumerate(zip(own, row, strict=True))
    )
    return f"({', '.join(parts)})"


def _sql_part(table: str, position: int, column: str) -> str:
    """A version's part (at, sequence, event ID); a missing sequence or event ID ranks lowest."""
    lowest = ("", "-1", "'00000000-0000-0000-0000-000000000000'::uuid")[position]
    return f"coalesce({table}.{column}, {lowest})" if lowest else f"{table}.{column}"


def _older(group: str | None) -> str:
    return f"{_sql_version('orders', group)} < {_sql_version('EXCLUDED', group)}"


def _set_where_older(group: str | None, columns: tuple[str, ...]) -> list[str]:
    return [f"{c} = CASE WHEN {_older(group)} THEN EXCLUDED.{c} ELSE orders.{c} END" for c in columns]


# Snapshots upserted as order_versions.apply_fields applies them (a group only where the snapshot is newer
# than it; the row's version where newer); a new order's groups all start at the snapshot's version.
_GROUP_VERSIONS = tuple(c for g in GROUPS for c in version_columns(g))
SNAPSHOTS_UPSERT = (
    f"INSERT INTO orders ({', '.join(ORDER_COLUMNS + _GROUP_VERSIONS)}) "
    f"SELECT n.*, {', '.join(f'n.{c}' for _ in GROUPS for c in version_columns(None))} "
    f"FROM {_unnest(ORDER_COLUMNS)} "
    "ON CONFLICT (account_id, amazon_order_id) DO UPDATE SET "
    + ", ".join(
        [s for g, names in GROUPS.items() for s in _set_where_older(g, names + version_columns(g))]
        + _set_where_older(None, version_columns(None))
    )
    + f" WHERE {' OR '.join(_older(g) for g in GROUPS)}"
)
"""$1..$15: one array per ORDER_COLUMNS column."""

# What a change of status or item counts, or a refund, may set (order_versions.apply_fields), written back
# from the folded rows: the fields, the row's version and every group's (one without its own version gets the
# row's old one when the row's moves).
CHANGED_COLUMNS = ("status", "items_shipped", "items_unshipped", *version_columns(None), *_GROUP_VERSIONS)


def changes_update(first: int) -> str:
    """UPDATE of the changed orders from arrays $first.. (the key, then CHANGED_COLUMNS)."""
    return (
        f"UPDATE orders o SET {', '.join(f'{c} = n.{c}' for c in CHANGED_COLUMNS)} "
        f"FROM {_unnest(_KEY + CHANGED_COLUMNS, first)} "
        "WHERE o.account_id = n.account_id AND o.amazon_order_id = n.amazon_order_id"
    )


def changes_arrays(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """The arguments of ``changes_update``: one array a column (the key, then CHANGED_COLUMNS)."""
    return [[r[c] for r in rows] for c in _KEY + CHANGED_COLUMNS]


async def upsert_snapshots(conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Apply snapshots (each a value for every ORDER_COLUMNS column; one per order) as SNAPSHOTS_UPSERT does."""
    await conn.execute(SNAPSHOTS_UPSERT, *([r[c] for r in rows] for c in ORDER_COLUMNS))


async def update_changes(conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write back orders whose rows were folded with changes (their rows locked already)."""
    if rows:
        await conn.execute(changes_update(1), *changes_arrays(rows))


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
