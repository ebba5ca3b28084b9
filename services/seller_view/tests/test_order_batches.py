"""The set-based order handlers give exactly the rows of the per-event path, whatever the batch boundaries:
random histories with changes before their order, stale changes, newer and older snapshots and refunds,
applied event by event into one schema and in random batches through the handler table into another.
Also for histories whose events tie on last_update_date (order_versions.py decides between them), with
some batches delivered twice: orders, their status history and the day summaries all agree."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from unified_seller_view import store
from unified_seller_view.handlers import handler_for, table_for
from unified_shared.consumer import ReceivedEvent
from unified_shared.contracts import orders
from unified_shared.db import connect
from unified_shared.events import Event

from .order_histories import interleave, order_events
from .support import DE, US, as_received, create_readmodels

T0 = datetime(2026, 9, 1, tzinfo=UTC)


def _history(rng: random.Random) -> list[Event]:
    accounts = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(3)]
    out: list[Event] = []
    for n in range(25):
        account = rng.choice(accounts)
        order_id = f"{n:03d}-0000000-0000000"
        market, currency = rng.choice([(US, "USD"), (DE, "EUR")])
        placed = T0 + timedelta(hours=n)
        order: dict[str, Any] = {
            "account_id": account,
            "marketplace_id": market,
            "amazon_order_id": order_id,
            "region": "NA" if market == US else "EU",
        }  # what every event of the order carries

        def snapshot(at: datetime, status: str) -> orders.OrderPlaced:
            return orders.OrderPlaced(
                **order,
                purchase_date=placed,
                last_update_date=at,
                order_status=status,  # type: ignore[arg-type]
                fulfillment_channel="MFN",
                order_total=orders.Money(currency_code=currency, amount=Decimal(rng.randint(100, 9999)) / 100),
                number_of_items=2,
                number_of_items_unshipped=2,
            )

        events: list[Event] = [snapshot(placed, "Unshipped")]
        for k in range(rng.randint(0, 4)):
            at = placed + timedelta(hours=rng.randint(-1, 30))  # some older than the order's last update
            pick = rng.random()
            if pick < 0.5:
                events.append(
                    orders.OrderStatusChanged(
                        **order,
                        from_status="Unshipped",
                        to_status=rng.choice(["Shipped", "Canceled", "PartiallyShipped"]),  # type: ignore[arg-type]
                        last_update_date=at,
                        number_of_items_shipped=rng.choice([None, 1, 2]),
                    )
                )
            elif pick < 0.8:
                events.append(
                    orders.OrderRefunded(
                        **order,
                        amount=orders.Money(currency_code=currency, amount=Decimal(k + 1)),
                        refunded_at=at,
                        last_update_date=at,
                    )
                )
            else:
                events.append(snapshot(at, rng.choice(["Shipped", "Pending"])))
        if rng.random() < 0.3:  # the order itself arrives after some of its changes
            events.insert(rng.randint(1, len(events)), events.pop(0))
        out.extend(events)
    # interleave the orders' histories, keeping each order's own order
    queues: dict[str, list[Event]] = {}
    for e in out:
        queues.setdefault(e.amazon_order_id, []).append(e)  # type: ignore[attr-defined]
    mixed: list[Event] = []
    while queues:
        key = rng.choice(sorted(queues))
        mixed.append(queues[key].pop(0))
        if not queues[key]:
            del queues[key]
    return mixed


async def _both_paths(
    conn: asyncpg.Connection, events: list[ReceivedEvent], rng: random.Random, redeliver: float = 0.0
) -> tuple[str, str]:
    """The events event by event into ``per_event`` and in random batches into ``batched`` (a share
    ``redeliver`` of the batches applied twice, as when a claim is lost); the two schemas' dumps."""
    await create_readmodels(conn, "per_event", "batched")
    one = handler_for("per_event")
    for received in events:
        async with conn.transaction():
            await one(conn, received)
    table = table_for("batched")
    start = 0
    while start < len(events):
        size = rng.choice([1, 2, 7, 30, 500])
        for _ in range(2 if rng.random() < redeliver else 1):
            async with conn.transaction():
                await table.apply(conn, events[start : start + size])
        start += size
    return await store.dump(conn, "per_event"), await store.dump(conn, "batched")


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_batches_give_the_rows_of_the_per_event_path(fresh_db: str, seed: int) -> None:
    rng = random.Random(seed)
    events = as_received(_history(rng))
    conn = await connect(fresh_db)
    try:
        expected, batched = await _both_paths(conn, events, rng)
        assert "## orders (25)" in expected
        assert batched == expected
    finally:
        await conn.close()


@pytest.mark.parametrize(("seed", "ties"), [(1, False), (2, False), (3, False), (1, True), (2, True), (3, True)])
async def test_tied_updates_give_one_result_whatever_the_batches(fresh_db: str, seed: int, ties: bool) -> None:
    """The summaries' histories (ties=False: the one that showed Pending in one path and Shipped in the
    other) and histories where most events of an order share a last_update_date."""
    rng = random.Random(seed)
    accounts = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(2)]
    events = as_received(interleave(rng, [order_events(rng, rng.choice(accounts), n, ties=ties) for n in range(60)]))
    dates: dict[tuple[str, Any], int] = {}
    for r in events:
        at = (r.event.amazon_order_id, r.event.last_update_date)  # type: ignore[attr-defined]
        dates[at] = dates.get(at, 0) + 1
    assert not ties or sum(n > 1 for n in dates.values()) >= 10, "the history has too few ties"
    conn = await connect(fresh_db)
    try:
        expected, batched = await _both_paths(conn, events, rng, redeliver=0.2)
        assert "## orders (60)" in expected and "## order_status_history" in expected
        assert "## order_day_summaries (0)" not in expected
        assert batched == expected
    finally:
        await conn.close()
