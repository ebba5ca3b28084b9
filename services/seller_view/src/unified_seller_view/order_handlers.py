"""Handlers of the order events applied one by one: the order row, its refunds, and the changes parked
until the order they change is known (inside the consumer's batch transaction)."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view import orders_store, store
from unified_seller_view.order_versions import CHANGE_MODELS, Change, apply_fields, change_fields, version
from unified_shared.contracts import orders

log = logging.getLogger("unified_seller_view.handlers")  # the name it had before the split


def _order_row(event: orders.OrderPlaced, event_id: UUID, sequence: int | None) -> dict[str, Any]:
    return {
        "account_id": event.account_id,
        "amazon_order_id": event.amazon_order_id,
        "marketplace_id": event.marketplace_id,
        "region": event.region,
        "purchase_date": event.purchase_date,
        "last_update_date": event.last_update_date,
        "status": event.order_status,
        "fulfillment_channel": event.fulfillment_channel,
        "currency": event.order_total.currency_code,
        "amount": event.order_total.amount,
        "number_of_items": event.number_of_items,
        "items_shipped": event.number_of_items_shipped,
        "items_unshipped": event.number_of_items_unshipped,
        "version_sequence": sequence,
        "version_event_id": event_id,
    }


async def apply_order_placed(
    conn: asyncpg.Connection, event: orders.OrderPlaced, event_id: UUID, sequence: int | None
) -> None:
    # Each group of fields where the snapshot is newer than it (order_versions.py): the same snapshot again, or
    # an older one, changes nothing the order knows better.
    await orders_store.upsert_snapshots(conn, [_order_row(event, event_id, sequence)])
    # Changes that arrived before the order: apply them now, in the order they happened.
    parked = await orders_store.take_parked(conn, event.account_id, event.amazon_order_id)
    if not parked:
        return
    order = await orders_store.get_order(conn, event.account_id, event.amazon_order_id)
    assert order is not None
    current = dict(order)  # read once: each change below updates it as it writes the row
    for row in sorted(parked, key=lambda r: version(r["last_update_date"], r["sequence"], r["event_id"])):
        change = CHANGE_MODELS[row["event_type"]].model_validate(store.as_json(row["payload"]))
        await _change_known_order(conn, current, change, row["event_id"], row["sequence"])


async def apply_order_change(
    conn: asyncpg.Connection,
    event: Change,
    event_id: UUID,
    sequence: int | None,
) -> None:
    existing = await orders_store.get_order(conn, event.account_id, event.amazon_order_id)
    if existing is None:
        await orders_store.park_order_event(
            conn,
            event.account_id,
            event_id,
            amazon_order_id=event.amazon_order_id,
            event_type=event.NAME,
            last_update_date=event.last_update_date,
            sequence=sequence,
            payload=event.model_dump(mode="json"),
        )
        log.info(
            "order change held until its order arrives",
            extra={"amazon_order_id": event.amazon_order_id, "event_type": event.NAME},
        )
        return
    await _change_known_order(conn, dict(existing), event, event_id, sequence)


async def _change_known_order(
    conn: asyncpg.Connection,
    current: dict[str, Any],
    event: Change,
    event_id: UUID,
    sequence: int | None,
) -> None:
    """A refund is kept whatever its version (and moves the order's version when newer); a status change
    sets the fields it carries where newer than them (order_versions.py). ``current``: the order's row, read
    and locked by the caller; updated in place as it is written."""
    if isinstance(event, orders.OrderRefunded):
        await orders_store.insert_refund(
            conn,
            event.account_id,
            event_id,
            amazon_order_id=event.amazon_order_id,
            currency=event.amount.currency_code,
            amount=event.amount.amount,
            refunded_at=event.refunded_at,
        )
    if apply_fields(current, change_fields(event), version(event.last_update_date, sequence, event_id), sequence):
        await orders_store.update_changes(conn, [current])
