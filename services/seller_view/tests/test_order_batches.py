"""The set-based order handlers give exactly the rows of the per-event path, whatever the batch boundaries:
random histories with changes before their order, stale changes, newer and older snapshots and refunds,
applied event by event into one schema and in random batches through the handler table into another.
Also for histories whose events tie on last_update_date (order_versions.py decides between them), with
some batches delivered twice: orders, their status history and the day summaries all agree."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from unified_seller_view import store
from unified_seller_view.handlers import handler_for, table_for
from unified_seller_view.order_versions import Version, version
from unified_shared.consumer import ReceivedEvent
from unified_shared.contracts import orders
from unified_shared.db import connect
from unified_shared.events import Event

from .order_histories import interleave, order_events
from .support import apply_in_random_batches, as_received, create_readmodels

T0 = datetime(2026, 9, 1, tzinfo=UTC)


def _history(rng: random.Random) -> list[Event]:
    """25 orders of three accounts (order_histories' events), interleaved as one partition holds them."""
    accounts = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(3)]
    return interleave(rng, [order_events(rng, rng.choice(accounts), n) for n in range(25)])


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


async def _apply_each(conn: asyncpg.Connection, schema: str, events: list[ReceivedEvent]) -> None:
    one = handler_for(schema)
    for received in events:
        async with conn.transaction():
            await one(conn, received)


def _version_of(received: ReceivedEvent) -> Version:
    return version(received.event.last_update_date, received.envelope.sequence, received.event_id)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("seed", "ties"), [(1, False), (2, False), (3, True)])
async def test_any_arrival_order_gives_the_rows_of_the_version_order(fresh_db: str, seed: int, ties: bool) -> None:
    """Each group of an order's fields ends at the newest event that sets it (order_versions.py): the events
    of 40 orders (snapshots newer and older, status changes with and without item counts, refunds) applied
    in version order, and shuffled at random (event by event, and in random batches, some twice), give the same view."""
    rng = random.Random(seed)
    accounts = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(2)]
    histories = [order_events(rng, rng.choice(accounts), n, ties=ties, counts=True) for n in range(40)]
    published = as_received(interleave(rng, histories))  # IDs and sequences as published
    in_order = sorted(published, key=_version_of)
    shuffled = list(published)
    rng.shuffle(shuffled)
    conn = await connect(fresh_db)
    try:
        await create_readmodels(conn, "in_order", "shuffled", "shuffled_batches")
        await _apply_each(conn, "in_order", in_order)
        await _apply_each(conn, "shuffled", shuffled)
        await apply_in_random_batches(conn, "shuffled_batches", shuffled, rng)
        expected = await store.dump(conn, "in_order")
        assert "## orders (40)" in expected and "## parked_order_events (0)" in expected
        assert await store.dump(conn, "shuffled") == expected
        assert await store.dump(conn, "shuffled_batches") == expected
    finally:
        await conn.close()


@pytest.mark.parametrize("parked", [False, True])
async def test_item_counts_that_move_without_a_status_change_reach_the_order(fresh_db: str, parked: bool) -> None:
    """OrderItemCountsChanged sets the counts (not the status), in both paths, also when it comes before its
    order (parked, then applied)."""
    rng = random.Random(5)
    [placed] = order_events(random.Random(4), uuid.UUID(int=rng.getrandbits(128)), 1)[:1]
    assert isinstance(placed, orders.OrderPlaced)
    moved = orders.OrderItemCountsChanged(
        **placed.model_dump(include={"account_id", "marketplace_id", "amazon_order_id", "region"}),
        last_update_date=placed.last_update_date + timedelta(hours=1),
        number_of_items_shipped=2,
        number_of_items_unshipped=1,
    )
    events = as_received([moved, placed] if parked else [placed, moved])
    conn = await connect(fresh_db)
    try:
        await create_readmodels(conn, "per_event", "batched")
        await _apply_each(conn, "per_event", events)
        await apply_in_random_batches(conn, "batched", events, rng)
        for schema in ("per_event", "batched"):
            row = await conn.fetchrow(f"SELECT * FROM {schema}.orders")
            assert (row["status"], row["items_shipped"], row["items_unshipped"]) == (placed.order_status, 2, 1)
            assert row["last_update_date"] == moved.last_update_date
            assert await conn.fetchval(f"SELECT count(*) FROM {schema}.parked_order_events") == 0
    finally:
        await conn.close()
