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
from unified_shared.contracts.orders import OrderItemCountsChanged, OrderPlaced, OrderRefunded, OrderStatusChanged
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


async def test_item_counts_moving_without_a_status_change_are_published() -> None:
    """One more item of a PartiallyShipped order shipped: the view must learn the counts (no status change)."""
    h, units = service()
    who = principal()
    oid = order_id()
    await h.ingest(who, [order(oid, status="PartiallyShipped", shipped=1, unshipped=2)])
    [more] = await h.ingest(
        who, [order(oid, status="PartiallyShipped", updated="2026-09-02T10:00:00Z", shipped=2, unshipped=1)]
    )
    [same] = await h.ingest(
        who, [order(oid, status="PartiallyShipped", updated="2026-09-03T10:00:00Z", shipped=2, unshipped=1)]
    )
    assert (more.outcome, more.events, same.outcome, same.events) == (
        "updated",
        ["OrderItemCountsChanged"],
        "updated",
        [],
    )
    assert names(units.events) == ["OrderPlaced", "OrderItemCountsChanged"]
    counts = units.events[1].event
    assert isinstance(counts, OrderItemCountsChanged)
    assert (counts.number_of_items_shipped, counts.number_of_items_unshipped) == (2, 1)
    assert units.events[1].version == 2 and units.events[1].occurred_at == counts.last_update_date


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


async def test_concurrent_ingests_share_units_whatever_their_accounts_and_each_gets_its_own_answer() -> None:
    h, units = service()
    sellers = [principal() for _ in range(3)]
    raws = [order() for _ in range(12)]
    bad = {**order(), "OrderTotal": {"CurrencyCode": "GBP", "Amount": "1.00"}}
    requests = [(sellers[n % 3], [raw]) for n, raw in enumerate(raws)]
    requests += [(sellers[0], [bad]), (sellers[0], [raws[0]]), (sellers[1], [raws[0]]), (sellers[1], raws[1:3])]
    answers = await asyncio.gather(*(h.ingest(who, r) for who, r in requests))
    # raws[0] belongs to seller 0: again for seller 0 it is unchanged; for seller 1 it is another order
    assert [[a.outcome for a in answer] for answer in answers] == [["placed"]] * 12 + [
        ["rejected"],
        ["unchanged"],
        ["placed"],
        ["unchanged", "placed"],
    ]
    assert [[a.amazon_order_id for a in answer] for answer in answers] == [
        [raw["AmazonOrderId"] for raw in r] for _, r in requests
    ]
    assert isinstance(answers[12][0].error, Invalid)
    # every request was queued before the first unit began: one unit for all three accounts
    assert units.commits == 1 and h.group.batches == 1
    placed = sorted((str(a.event.account_id), a.event.amazon_order_id) for a in units.events)  # type: ignore[attr-defined]
    expected = [(who.account_id, raw) for who, r in requests for raw in r if raw is not bad]
    assert placed == sorted({(str(a), raw["AmazonOrderId"]) for a, raw in expected})
    assert {a.stream_id for a in units.events} == {stream_id(UUID(a), i) for a, i in placed}


class HeldFor:
    """A participation gate that holds one account's requests until released (its marketplace unlearned)."""

    def __init__(self, account: UUID) -> None:
        self.account = account
        self.release = asyncio.Event()

    async def verdicts(self, account_id: UUID, marketplace_ids: set[str]) -> dict[str, tuple[str, str]]:
        if account_id == self.account:
            await self.release.wait()
        return {m: ("open", "open") for m in marketplace_ids}


async def test_a_request_waiting_for_its_participation_holds_no_other_account() -> None:
    slow, quick = principal(), principal()
    gate = HeldFor(slow.account_id)
    h, units = service(gate=gate)
    waiting = asyncio.create_task(h.ingest(slow, [order()]))
    [placed] = await asyncio.wait_for(h.ingest(quick, [order()]), 5)
    assert placed.outcome == "placed" and not waiting.done()
    gate.release.set()
    assert [r.outcome for r in await waiting] == ["placed"] and len(units.events) == 2


class CountingGate:
    """A participation gate that answers open and records whom it was asked about."""

    def __init__(self) -> None:
        self.asked: list[UUID] = []

    async def verdicts(self, account_id: UUID, marketplace_ids: set[str]) -> dict[str, tuple[str, str]]:
        self.asked.append(account_id)
        return {m: ("open", "open") for m in marketplace_ids}


async def test_a_unit_reads_the_learned_participations_and_only_an_unlearned_one_asks_the_gate() -> None:
    gate = CountingGate()
    h, units = service(gate=gate)
    known, unknown, closed = principal(), principal(), principal()
    units.store.participations[(known.account_id, DE)] = ("open", "open")
    units.store.participations[(closed.account_id, DE)] = ("not-open", "closed")
    updated = order()
    units.store.participations[(unknown.account_id, DE)] = ("open", "open")
    await h.ingest(unknown, [updated])
    del units.store.participations[(unknown.account_id, DE)]
    answers = await asyncio.gather(
        h.ingest(known, [order()]),
        h.ingest(unknown, [order(), order()]),  # deferred whole, asks the gate, goes again
        h.ingest(closed, [order()]),
        h.ingest(unknown, [{**updated, "LastUpdateDate": "2026-09-02T10:00:00Z"}]),  # an update: no verdict needed
    )
    assert [[r.outcome for r in a] for a in answers] == [["placed"], ["placed", "placed"], ["rejected"], ["updated"]]
    assert isinstance(answers[2][0].error, Invalid) and answers[2][0].error.field == "MarketplaceId"
    assert gate.asked == [unknown.account_id]  # once, for the request with an unlearned marketplace
    assert len(units.events) == 4 and units.commits == 3  # first order; one shared unit; the deferred again
