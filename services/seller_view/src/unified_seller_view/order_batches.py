"""Order events applied set-based: a batch's OrderPlaced in one upsert, its status changes and refunds folded
in log order in Python and written in a few statements. Same rules as the per-event path (order_handlers.py): a
snapshot replaces an order only when newer; a change older than the order's last update is stale; a refund
is kept once and moves the last update forward; changes before their order are parked and applied, in the
order they happened, when it arrives."""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Sequence
from datetime import UTC
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view import summaries
from unified_shared.consumer import ReceivedEvent
from unified_shared.contracts import orders

log = logging.getLogger(__name__)

OrderKey = tuple[UUID, str]
DayKey = summaries.DayKey


def order_key(received: ReceivedEvent) -> Hashable:
    """What an order event touches: its order (events of different orders never depend on each other)."""
    event = received.event
    return (event.account_id, event.amazon_order_id)  # type: ignore[attr-defined]


_ORDER_COLUMNS = (
    "account_id, amazon_order_id, marketplace_id, region, purchase_date, last_update_date, status, "
    "fulfillment_channel, currency, amount, number_of_items, items_shipped, items_unshipped"
)


async def apply_placed(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
    newest: dict[OrderKey, orders.OrderPlaced] = {}
    for received in events:
        e = received.event
        assert isinstance(e, orders.OrderPlaced)
        key = (e.account_id, e.amazon_order_id)
        known = newest.get(key)
        if known is None or e.last_update_date > known.last_update_date:  # ties: the first one stays
            newest[key] = e
    rows = list(newest.values())
    days: set[DayKey] = set()
    if not summaries.inside_batch():  # else the batch keeps the summaries by difference: days not needed
        days = await summaries.order_days(conn, newest)  # a newer snapshot may move the purchase day
        days |= {(e.account_id, e.purchase_date.astimezone(UTC).date()) for e in rows}
    # One statement: the orders upserted and the changes parked for them taken (independent tables).
    parked = await conn.fetch(
        f"""WITH up AS (
            INSERT INTO orders ({_ORDER_COLUMNS})
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                                 $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::numeric[], $11::int[],
                                 $12::int[], $13::int[])
            ON CONFLICT (account_id, amazon_order_id) DO UPDATE SET marketplace_id = EXCLUDED.marketplace_id,
                region = EXCLUDED.region, purchase_date = EXCLUDED.purchase_date,
                last_update_date = EXCLUDED.last_update_date, status = EXCLUDED.status,
                fulfillment_channel = EXCLUDED.fulfillment_channel, currency = EXCLUDED.currency,
                amount = EXCLUDED.amount, number_of_items = EXCLUDED.number_of_items,
                items_shipped = EXCLUDED.items_shipped, items_unshipped = EXCLUDED.items_unshipped
            WHERE orders.last_update_date < EXCLUDED.last_update_date)
            DELETE FROM parked_order_events p USING unnest($1::uuid[], $2::text[]) AS k(a, o)
            WHERE p.account_id = k.a AND p.amazon_order_id = k.o
            RETURNING p.event_id, p.event_type, p.last_update_date, p.sequence, p.payload""",
        [e.account_id for e in rows],
        [e.amazon_order_id for e in rows],
        [e.marketplace_id for e in rows],
        [e.region for e in rows],
        [e.purchase_date for e in rows],
        [e.last_update_date for e in rows],
        [e.order_status for e in rows],
        [e.fulfillment_channel for e in rows],
        [e.order_total.currency_code for e in rows],
        [e.order_total.amount for e in rows],
        [e.number_of_items for e in rows],
        [e.number_of_items_shipped for e in rows],
        [e.number_of_items_unshipped for e in rows],
    )
    if parked:
        changes: list[tuple[UUID, int | None, Any]] = []
        for row in sorted(parked, key=lambda r: (r["last_update_date"], r["sequence"] or 0, str(r["event_id"]))):
            payload = row["payload"] if not isinstance(row["payload"], str) else json.loads(row["payload"])
            model = (
                orders.OrderRefunded if row["event_type"] == orders.OrderRefunded.NAME else orders.OrderStatusChanged
            )
            changes.append((row["event_id"], None, model.model_validate(payload)))
        await _apply_changes(conn, changes)
    await summaries.touch(conn, days)


async def apply_changes(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
    touched = await _apply_changes(conn, [(r.event_id, r.envelope.sequence, r.event) for r in events])
    await summaries.touch(conn, touched)


async def _apply_changes(conn: asyncpg.Connection, changes: list[tuple[UUID, int | None, Any]]) -> set[DayKey]:
    """Apply status changes and refunds; returns the (account, purchase day) of the orders they changed."""
    keys = list({(e.account_id, e.amazon_order_id) for _, _, e in changes})  # locked in the statement's order
    rows = await conn.fetch(
        """SELECT o.account_id, o.amazon_order_id, o.status, o.last_update_date, o.items_shipped, o.items_unshipped,
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
            refunds.append((event_id, e))
            current["last_update_date"] = max(current["last_update_date"], e.last_update_date)
            touched.add(key)
            continue
        if current["last_update_date"] > e.last_update_date:
            continue  # a stale change: the order already reflects a later one
        current["status"] = e.to_status
        current["last_update_date"] = e.last_update_date
        if e.number_of_items_shipped is not None:
            current["items_shipped"] = e.number_of_items_shipped
        if e.number_of_items_unshipped is not None:
            current["items_unshipped"] = e.number_of_items_unshipped
        touched.add(key)
    if parked:
        await _park(conn, parked)
    if refunds or touched:  # one statement: the refunds kept and the orders changed (independent tables)
        changed = [state[k] for k in touched]  # rows locked above already (FOR UPDATE, in key order)
        await conn.execute(
            """WITH refunds AS (
                   INSERT INTO order_refunds (account_id, event_id, amazon_order_id, currency, amount, refunded_at)
                   SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::numeric[],
                                        $6::timestamptz[])
                   ON CONFLICT DO NOTHING)
               UPDATE orders o SET status = n.s, last_update_date = n.l, items_shipped = n.sh, items_unshipped = n.un
               FROM unnest($7::uuid[], $8::text[], $9::text[], $10::timestamptz[], $11::int[], $12::int[])
                   AS n(a, i, s, l, sh, un)
               WHERE o.account_id = n.a AND o.amazon_order_id = n.i""",
            [e.account_id for _, e in refunds],
            [i for i, _ in refunds],
            [e.amazon_order_id for _, e in refunds],
            [e.amount.currency_code for _, e in refunds],
            [e.amount.amount for _, e in refunds],
            [e.refunded_at for _, e in refunds],
            [c["account_id"] for c in changed],
            [c["amazon_order_id"] for c in changed],
            [c["status"] for c in changed],
            [c["last_update_date"] for c in changed],
            [c["items_shipped"] for c in changed],
            [c["items_unshipped"] for c in changed],
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
