"""Order events applied set-based: a batch's OrderPlaced in one upsert, its other changes (status, item counts,
refunds) folded in log order in Python and written in a few statements. Same rules as the per-event path
(order_handlers.py): an event sets each group of fields it carries only where newer than the event that set
that group last, by (last_update_date, sequence, event ID) (order_versions.py: ties too have one answer); a
refund is kept once and moves the order's version forward when newer; changes before their order are parked
and applied, in that order, when it arrives."""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Sequence
from datetime import UTC
from typing import Any, cast
from uuid import UUID

import asyncpg

from unified_seller_view import summaries
from unified_seller_view.order_versions import CHANGE_MODELS, Version, apply_fields, change_fields, newer, version
from unified_seller_view.orders_store import CHANGED_COLUMNS, SNAPSHOTS_UPSERT, changes_arrays, changes_update
from unified_shared.consumer import ReceivedEvent
from unified_shared.contracts import orders

log = logging.getLogger(__name__)

OrderKey = tuple[UUID, str]
DayKey = summaries.DayKey


def order_key(received: ReceivedEvent) -> Hashable:
    """What an order event touches: its order (events of different orders never depend on each other)."""
    event = received.event
    return (event.account_id, event.amazon_order_id)  # type: ignore[attr-defined]


async def apply_placed(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
    """As the per-event path, which applies each snapshot in turn: the first snapshot of each order in the
    batch, with the changes parked for it; then the newest of the order's later snapshots (a snapshot sets
    every group of fields, each where newer: the newest of several is what applying them in turn gives)."""
    first: dict[OrderKey, ReceivedEvent] = {}
    later: dict[OrderKey, ReceivedEvent] = {}
    for received in events:
        e = received.event
        assert isinstance(e, orders.OrderPlaced)
        key = (e.account_id, e.amazon_order_id)
        if key not in first:
            first[key] = received
        elif key not in later or newer(_version(received), _version(later[key])):
            later[key] = received
    days: set[DayKey] = set()
    if not summaries.inside_batch():  # else the batch keeps the summaries by difference: days not needed
        days = await summaries.order_days(conn, first)  # a newer snapshot may move the purchase day
        days |= {(r.event.account_id, r.event.purchase_date.astimezone(UTC).date()) for r in events}  # type: ignore[attr-defined]
    parked = await _upsert(conn, list(first.values()))
    if parked:
        changes: list[tuple[UUID, int | None, Any]] = []
        for row in sorted(parked, key=lambda r: version(r["last_update_date"], r["sequence"], r["event_id"])):
            payload = row["payload"] if not isinstance(row["payload"], str) else json.loads(row["payload"])
            model = CHANGE_MODELS[row["event_type"]]
            changes.append((row["event_id"], row["sequence"], model.model_validate(payload)))
        await _apply_changes(conn, changes)
    if later:
        await _upsert(conn, list(later.values()))  # nothing parked for these orders any more
    await summaries.touch(conn, days)


def _version(received: ReceivedEvent) -> Version:
    return version(received.event.last_update_date, received.envelope.sequence, received.event_id)  # type: ignore[attr-defined]


async def _upsert(conn: asyncpg.Connection, placed: list[ReceivedEvent]) -> list[asyncpg.Record]:
    """One statement: the snapshots upserted where newer than the order's version (order_versions.py) and
    the changes parked for their orders taken (independent tables)."""
    rows = [(cast(orders.OrderPlaced, r.event), r.envelope.sequence, r.event_id) for r in placed]
    return await conn.fetch(
        f"""WITH up AS ({SNAPSHOTS_UPSERT})
            DELETE FROM parked_order_events p USING unnest($1::uuid[], $2::text[]) AS k(a, o)
            WHERE p.account_id = k.a AND p.amazon_order_id = k.o
            RETURNING p.event_id, p.event_type, p.last_update_date, p.sequence, p.payload""",
        [e.account_id for e, _, _ in rows],
        [e.amazon_order_id for e, _, _ in rows],
        [e.marketplace_id for e, _, _ in rows],
        [e.region for e, _, _ in rows],
        [e.purchase_date for e, _, _ in rows],
        [e.last_update_date for e, _, _ in rows],
        [e.order_status for e, _, _ in rows],
        [e.fulfillment_channel for e, _, _ in rows],
        [e.order_total.currency_code for e, _, _ in rows],
        [e.order_total.amount for e, _, _ in rows],
        [e.number_of_items for e, _, _ in rows],
        [e.number_of_items_shipped for e, _, _ in rows],
        [e.number_of_items_unshipped for e, _, _ in rows],
        [s for _, s, _ in rows],
        [i for _, _, i in rows],
    )


async def apply_changes(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
    touched = await _apply_changes(conn, [(r.event_id, r.envelope.sequence, r.event) for r in events])
    await summaries.touch(conn, touched)


_LOCKED_COLUMNS = ", ".join(f"o.{c}" for c in CHANGED_COLUMNS)


async def _apply_changes(conn: asyncpg.Connection, changes: list[tuple[UUID, int | None, Any]]) -> set[DayKey]:
    """Apply changes of status or item counts and refunds; returns the (account, purchase day) of the orders
    they changed."""
    keys = list({(e.account_id, e.amazon_order_id) for _, _, e in changes})  # locked in the statement's order
    rows = await conn.fetch(
        f"""SELECT o.account_id, o.amazon_order_id, {_LOCKED_COLUMNS},
                  (o.purchase_date AT TIME ZONE 'UTC')::date AS day
           FROM orders o JOIN unnest($1::uuid[], $2::text[]) AS k(a, i)
             ON o.account_id = k.a AND o.amazon_order_id = k.i
           ORDER BY o.account_id, o.amazon_order_id FOR UPDATE OF o""",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    state: dict[OrderKey, dict[str, Any]] = {(r["account_id"], r["amazon_order_id"]): dict(r) for r in rows}
    touched: set[OrderKey] = set()
    parked: list[tuple[UUID, int | None, Any]] = []
    refunds: list[tuple[UUID, Any]] = []
    for event_id, sequence, e in changes:
        key = (e.account_id, e.amazon_order_id)
        current = state.get(key)
        if current is None:
            parked.append((event_id, sequence, e))
            continue
        if isinstance(e, orders.OrderRefunded):
            refunds.append((event_id, e))  # kept whatever its version; moves the order's version when newer
            touched.add(key)  # its day's refunds changed
        if apply_fields(current, change_fields(e), version(e.last_update_date, sequence, event_id), sequence):
            touched.add(key)
    if parked:
        await _park(conn, parked)
    if refunds or touched:  # one statement: the refunds kept and the orders changed (independent tables)
        changed = [state[k] for k in touched]  # rows locked above already (FOR UPDATE, in key order)
        await conn.execute(
            f"""WITH refunds AS (
                   INSERT INTO order_refunds (account_id, event_id, amazon_order_id, currency, amount, refunded_at)
                   SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::numeric[],
                                        $6::timestamptz[])
                   ON CONFLICT DO NOTHING)
               {changes_update(7)}""",
            [e.account_id for _, e in refunds],
            [i for i, _ in refunds],
            [e.amazon_order_id for _, e in refunds],
            [e.amount.currency_code for _, e in refunds],
            [e.amount.amount for _, e in refunds],
            [e.refunded_at for _, e in refunds],
            *changes_arrays(changed),
        )
    return {(state[k]["account_id"], state[k]["day"]) for k in touched}


async def _park(conn: asyncpg.Connection, parked: list[tuple[UUID, int | None, Any]]) -> None:
    for _, _, e in parked:
        log.info(
            "order change held until its order arrives",
            extra={"amazon_order_id": e.amazon_order_id, "event_type": e.NAME},
        )
    await conn.execute(
        """INSERT INTO parked_order_events (account_id, event_id, amazon_order_id, event_type, last_update_date,
               sequence, payload)
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::int[],
                                $7::jsonb[])
           ON CONFLICT DO NOTHING""",
        [e.account_id for _, _, e in parked],
        [i for i, _, _ in parked],
        [e.amazon_order_id for _, _, e in parked],
        [e.NAME for _, _, e in parked],
        [e.last_update_date for _, _, e in parked],
        [s for _, s, _ in parked],
        [e.model_dump(mode="json") for _, _, e in parked],
    )
