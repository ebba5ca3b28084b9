"""Each order's status history: one row per order event (placed, status changed, refunded), written in the
consumer's transaction beside the order handlers.

The orders row keeps only the latest status; the history keeps every step with its time, so an order's page
can show Pending -> Unshipped -> Shipped and its refunds. A row is keyed by its event ID and inserted with
ON CONFLICT DO NOTHING: a redelivery or replay (even without the consumer's own deduplication) adds nothing.
Rows do not depend on the order row, so a change that arrives before its order is recorded at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view.overview_rules import minor
from unified_shared.contracts import orders
from unified_shared.events import Event

ORDER_EVENTS = (orders.OrderPlaced, orders.OrderStatusChanged, orders.OrderRefunded)

# Entries of one instant: the order's placing first, then status changes, then refunds.
_KIND_RANK = {"placed": 0, "status_changed": 1, "refunded": 2}


def entry(event_id: UUID, sequence: int | None, event: Event) -> tuple[Any, ...] | None:
    """The history row of an order event (None for any other event)."""
    if isinstance(event, orders.OrderPlaced):
        kind, at, before, after = "placed", event.last_update_date, None, event.order_status
        currency = amount = None
    elif isinstance(event, orders.OrderStatusChanged):
        kind, at, before, after = "status_changed", event.last_update_date, event.from_status, event.to_status
        currency = amount = None
    elif isinstance(event, orders.OrderRefunded):
        kind, at, before, after = "refunded", event.refunded_at, None, None
        currency, amount = event.amount.currency_code, event.amount.amount
    else:
        return None
    return (event.account_id, event_id, event.amazon_order_id, kind, at, before, after, currency, amount, sequence)


async def record(conn: asyncpg.Connection, changes: Sequence[tuple[UUID, int | None, Event]]) -> None:
    """Add the history rows of a batch of (event ID, sequence, event) in one statement."""
    rows = [r for r in (entry(i, s, e) for i, s, e in changes) if r is not None]
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    await conn.execute(
        """INSERT INTO order_status_history (account_id, event_id, amazon_order_id, kind, at, from_status,
               to_status, currency, amount, sequence)
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::text[],
                                $7::text[], $8::text[], $9::numeric[], $10::bigint[])
           ON CONFLICT DO NOTHING""",
        *[list(c) for c in columns],
    )


async def history(conn: asyncpg.Connection, account_id: UUID, amazon_order_id: str) -> list[dict[str, Any]]:
    """The order's entries in the order they happened (ties: placed, changes, refunds; then log order)."""
    rows = await conn.fetch(
        """SELECT event_id, kind, at, from_status, to_status, currency, amount, sequence
           FROM order_status_history WHERE account_id = $1 AND amazon_order_id = $2""",
        account_id,
        amazon_order_id,
    )
    ordered = sorted(rows, key=lambda r: (r["at"], _KIND_RANK[r["kind"]], r["sequence"] or 0, r["event_id"]))
    return [as_json(r) for r in ordered]


def as_json(r: asyncpg.Record) -> dict[str, Any]:
    refund = None
    if r["kind"] == "refunded":
        refund = {"currency_code": r["currency"], "amount": format(r["amount"].quantize(minor(r["currency"])), "f")}
    return {
        "kind": r["kind"],
        "at": r["at"].isoformat(),
        "from_status": r["from_status"],
        "status": r["to_status"],
        "refund": refund,
    }
