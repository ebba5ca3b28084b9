"""Fast unit tier: the order handlers over the fake unit of work (no broker, no database).

What a command commits (events, their stream versions, the relay woken once) and what a refusal leaves
(nothing), decided by the same handler code the service runs over PostgreSQL.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import pytest

from unified_orders.handlers import INGEST_ATTEMPTS, OrdersHandlers
from unified_orders.paging import OrdersParams
from unified_orders.store import stream_id
from unified_shared.auth import Principal
from unified_shared.catalog import ApiRegion
from unified_shared.contracts.orders import OrderPlaced, OrderRefunded, OrderStatusChanged
from unified_shared.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from unified_shared.uow import Appended, FakeUnits

from .fakes import FakeOrdersStore
from .support import DE, UK, order, order_id


def principal(account: UUID | None = None, marketplaces: Any = "*") -> Principal:
    return Principal(uuid4(), account or uuid4(), "owner", frozenset(), marketplaces, "t")


def service(gate: Any = None) -> tuple[OrdersHandlers, FakeUnits[FakeOrdersStore]]:
    units = FakeUnits(FakeOrdersStore())
    return OrdersHandlers(units, ApiRegion.EU, gate), units


def names(events: list[Appended]) -> list[str]:
    return [type(a.event).__name__ for a in events]


async def test_a_new_order_is_placed_once_and_wakes_the_relay_once() -> None:
    h, units = service()
    who = principal()
    raw = order()
    [placed] = await h.ingest(who, [raw])
    [again] = await h.ingest(who, [raw])
    assert (placed.outcome, again.outcome) == ("placed", "unchanged")
    assert names(units.events) == ["OrderPlaced"] and units.notified == 1
    [event] = units.events
    assert (event.stream_id, event.version) == (stream_id(who.account_id, raw["AmazonOrderId"]), 1)
    assert isinstance(event.event, OrderPlaced) and event.event.region == "EU"
    assert (await h.get_order(who, raw["AmazonOrderId"])).version == 1


async def test_a_refused_order_of_a_batch_leaves_no_trace_while_the_others_apply() -> None:
    h, units = service()
    who = principal()
    bad = {**order(), "OrderTotal": {"CurrencyCode": "GBP", "Amount": "1.00"}}
    good = order()
    results = await h.ingest(who, [bad, good])
    assert [r.outcome for r in results] == ["rejected", "placed"]
    assert isinstance(results[0].error, Invalid) and results[0].error.field == "OrderTotal.CurrencyCode"
    assert [a.event.amazon_order_id for a in units.events] == [good["AmazonOrderId"]]  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        await h.get_order(who, bad["AmazonOrderId"])


async def test_status_moves_forward_only() -> None:
    h, units = service()
    who = principal()
    oid = order_id()
    await h.ingest(who, [order(oid, status="Unshipped")])
    [shipped] = await h.ingest(
        who, [order(oid, status="Shipped", updated="2026-09-02T10:00:00Z", shipped=2, unshipped=0)]
    )
    [back] = await h.ingest(who, [order(oid, status="Unshipped", updated="2026-09-03T10:00:00Z")])
    assert (shipped.outcome, back.outcome) == ("updated", "rejected")
    assert isinstance(back.error, Conflict) and back.error.field == "OrderStatus"
    assert names(units.events) == ["OrderPlaced", "OrderStatusChanged"]
    change = units.events[1].event
    assert isinstance(change, OrderStatusChanged) and (change.from_status, change.to_status) == ("Unshipped", "Shipped")
    assert units.events[1].version == 2


async def test_a_refund_is_recorded_once_and_an_excessive_one_rolls_back() -> None:
    h, units = service()
    who = principal()
    oid = order_id()
    await h.ingest(who, [order(oid, status="Shipped", amount="20.00", shipped=2, unshipped=0)])
    refund = {"RefundAmount": {"CurrencyCode": "EUR", "Amount": "5.00"}, "RefundedAt": "2026-09-03T10:00:00Z"}
    first = await h.refund(who, oid, refund)
    repeat = await h.refund(who, oid, refund)
    assert (first.is_new, repeat.is_new) == (True, False)
    with pytest.raises(Invalid) as too_much:
        await h.refund(
            who, oid, {"RefundAmount": {"CurrencyCode": "EUR", "Amount": "15.01"}, "RefundedAt": "2026-09-04T10:00:00Z"}
        )
    assert too_much.value.field == "RefundAmount.Amount" and too_much.value.extra["AmazonOrderId"] == oid
    assert names(units.events) == ["OrderPlaced", "OrderRefunded"] and units.notified == 2
    refunded = units.events[1].event
    assert isinstance(refunded, OrderRefunded) and str(refunded.total_refunded.amount) == "5.00"
    assert len(units.store.refunds) == 1 and (await h.get_order(who, oid)).refunded_amount == 5


async def test_scope_and_region_are_checked_before_anything_is_written() -> None:
    h, units = service()
    scoped = principal(marketplaces=frozenset({DE}))
    [outside] = await h.ingest(scoped, [order(marketplace=UK)])
    assert isinstance(outside.error, Forbidden) and outside.error.field == "MarketplaceId"
    with pytest.raises(Invalid) as other_region:
        await h.get_orders(scoped, OrdersParams(["ATVPDKIKX0DER"], created_after="2026-09-01T00:00:00Z"))
    assert other_region.value.extra["region"] == "NA"
    assert units.events == [] and units.commits == 1  # the refused order's unit committed nothing


async def test_getorders_pages_with_a_next_token() -> None:
    h, _ = service()
    who = principal()
    placed = [order(purchased=f"2026-09-0{d}T10:00:00Z", updated=f"2026-09-0{d}T10:05:00Z") for d in (1, 2, 3)]
    await h.ingest(who, placed)
    first, token = await h.get_orders(who, OrdersParams([DE], created_after="2026-09-01T00:00:00Z", max_results=2))
    rest, last = await h.get_orders(who, OrdersParams([], next_token=token))
    assert [o.amazon_order_id for o in first + rest] == [o["AmazonOrderId"] for o in placed]
    assert token is not None and last is None


class NotLearnedYet:
    """A participation gate whose consumer has not learned the marketplace yet."""

    async def verdicts(self, account_id: UUID, marketplace_ids: set[str]) -> dict[str, tuple[str, str]]:
        return {m: ("not-learned", "") for m in marketplace_ids}


async def test_an_unlearned_marketplace_is_retryable() -> None:
    h, units = service(gate=NotLearnedYet())
    [result] = await h.ingest(principal(), [order()])
    assert isinstance(result.error, Unavailable) and result.error.retry_after == 1
    assert units.events == []


async def test_a_batch_that_keeps_losing_races_is_a_conflict() -> None:
    h, units = service()
    who = principal()
    raw = order()
    # Another command appended to the order's stream without this store seeing it: every attempt loses.
    stream = stream_id(who.account_id, raw["AmazonOrderId"])
    units.events.append(Appended(stream, 1, OrderPlaced.model_construct(), None))
    with pytest.raises(Conflict) as lost:
        await h.ingest(who, [raw])
    assert lost.value.field == "Orders" and units.commits == 0
    assert len(units.events) == 1 and INGEST_ATTEMPTS > 1


async def test_concurrent_ingests_of_an_account_share_units_and_each_gets_its_own_answer() -> None:
    h, units = service()
    who = principal()
    raws = [order() for _ in range(12)]
    bad = {**order(), "OrderTotal": {"CurrencyCode": "GBP", "Amount": "1.00"}}
    requests = [[raw] for raw in raws] + [[bad], [raws[0]], [raws[1], raws[2]]]  # refused, repeats
    answers = await asyncio.gather(*(h.ingest(who, r) for r in requests))
    assert [[a.outcome for a in answer] for answer in answers] == [["placed"]] * 12 + [
        ["rejected"],
        ["unchanged"],
        ["unchanged", "unchanged"],
    ]
    assert [[a.amazon_order_id for a in answer] for answer in answers] == [
        [raw["AmazonOrderId"] for raw in r] for r in requests
    ]
    assert isinstance(answers[12][0].error, Invalid)
    assert units.commits < len(requests) and h.group.batches == units.commits  # fewer units than requests
    assert sorted(a.event.amazon_order_id for a in units.events) == sorted(r["AmazonOrderId"] for r in raws)  # type: ignore[attr-defined]
