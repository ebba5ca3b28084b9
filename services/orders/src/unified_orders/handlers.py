"""Order commands: ingest (one or a batch), refund, and the getOrder(s) reads.

A command is one unit of work (``unified_shared.uow``): one transaction, the events appended last at the
order's expected version, the relay woken after the commit. Requests of different orders run side by side:
an order's row lock serializes what touches that order. A batch is applied set-based (one locking read, one
upsert, one append); a refused order leaves no trace while the valid ones of the same batch are applied.
Ingest requests that arrive together share units of work, whatever their accounts (``group_commit``): the
fixed cost of a unit is paid once per batch, not once per request.
Refusals are shared domain errors; the app maps them to problem+json.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from unified_orders.domain import (
    MAX_BATCH,
    Decision,
    OrderInput,
    OrderState,
    RefundInput,
    decide,
    decide_refund,
    parse_order,
    parse_refund,
)
from unified_orders.group_commit import GroupCommit
from unified_orders.paging import OrdersParams, next_token, plus_one
from unified_orders.store import OrderKey, OrdersStore, stream_id
from unified_shared.auth import Principal
from unified_shared.catalog import ApiRegion
from unified_shared.contracts.orders import (
    Money,
    OrderItemCountsChanged,
    OrderPlaced,
    OrderRefunded,
    OrderStatusChanged,
)
from unified_shared.errors import Conflict, DomainError, Invalid, NotFound, adding
from unified_shared.events import Event
from unified_shared.eventstore import StreamAppend
from unified_shared.participations import Gate, Verdict
from unified_shared.scope import check_marketplace, participation_refusal
from unified_shared.tracing import current_traceparent
from unified_shared.uow import RACES, UnitOfWork, Units

# An order of a request as parsed: its ID (if it has one) and its input, or why it was refused.
Parsed = tuple[str | None, OrderInput | DomainError]


@dataclass(frozen=True, slots=True)
class Submitted:
    """An order of a request on its way to a unit of work: its account, as parsed, and the participation
    verdict its request got for its marketplace (None: not asked, the unit reads what the gate has learned)."""

    account_id: UUID
    order_id: str | None
    order: OrderInput | DomainError
    verdict: tuple[Verdict, str] | None
    request: int  # which request it belongs to (the orders of a request are deferred together)
    traceparent: str | None  # its request's trace: the order's events continue it


# A batch that lost a race with another command on one of its orders is decided again this often.
INGEST_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one order of a batch: its outcome, its events, or the domain error that refused it."""

    amazon_order_id: str | None
    outcome: str
    error: DomainError | None = None
    events: list[str] = field(default_factory=list)


# An order left out of a unit: its request holds an order whose marketplace the gate has not learned yet.
DEFERRED = IngestResult(None, "deferred")


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund: RefundInput
    order: OrderState
    is_new: bool


def order_events(account_id: UUID, region: ApiRegion, decision: Decision) -> list[Event]:
    """The events of one ingest decision: OrderPlaced, OrderStatusChanged (with the item counts), else
    OrderItemCountsChanged when only the counts moved, or none (only LastUpdateDate moved)."""
    s = decision.state
    common: dict[str, Any] = {
        "account_id": account_id,
        "marketplace_id": s.marketplace_id,
        "amazon_order_id": s.amazon_order_id,
        "region": region.value,
    }
    if decision.outcome == "placed":
        return [
            OrderPlaced(
                **common,
                purchase_date=s.purchase_date,
                last_update_date=s.last_update_date,
                order_status=s.order_status,  # type: ignore[arg-type]
                fulfillment_channel=s.fulfillment_channel,  # type: ignore[arg-type]
                order_total=Money(currency_code=s.currency_code, amount=s.amount),
                number_of_items=s.items_shipped + s.items_unshipped,
                number_of_items_shipped=s.items_shipped,
                number_of_items_unshipped=s.items_unshipped,
            )
        ]
    if decision.status_change is not None:
        from_status, to_status = decision.status_change
        return [
            OrderStatusChanged(
                **common,
                from_status=from_status,  # type: ignore[arg-type]
                to_status=to_status,  # type: ignore[arg-type]
                last_update_date=s.last_update_date,
                number_of_items_shipped=s.items_shipped,
                number_of_items_unshipped=s.items_unshipped,
            )
        ]
    if decision.counts_changed:
        return [
            OrderItemCountsChanged(
                **common,
                last_update_date=s.last_update_date,
                number_of_items_shipped=s.items_shipped,
                number_of_items_unshipped=s.items_unshipped,
            )
        ]
    return []


class OrdersHandlers:
    def __init__(
        self, units: Units[OrdersStore], region: ApiRegion, gate: Gate | None = None, *, parallel: int = 2
    ) -> None:
        self.units = units
        self.region = region
        self.gate = gate
        # Concurrent ingests share units of work, whatever their accounts (up to a batch's size, a few at once).
        self._requests = itertools.count(1)
        self.group: GroupCommit[ApiRegion, Submitted, IngestResult] = GroupCommit(
            self._apply, MAX_BATCH, parallel, name="orders_ingest"
        )

    async def ingest(self, principal: Principal, raw_orders: Sequence[Any]) -> list[IngestResult]:
        """Validate in Python, then apply with the other ingests of the moment (``group_commit``). A unit
        checks its new orders' marketplaces against what the participation gate has learned; a request with
        one it has not learned yet is left out of the unit and asks the gate, which may wait for it (holding
        this request only), then goes again. A refused order is reported with its error and changes nothing;
        the others are applied."""
        principal.require("orders")
        if not 1 <= len(raw_orders) <= MAX_BATCH:
            raise Invalid("Orders", f"Orders must hold 1 to {MAX_BATCH} orders")
        parsed = [self._parse(principal, raw) for raw in raw_orders]
        account, request, trace = principal.account_id, next(self._requests), current_traceparent()
        submitted = [Submitted(account, oid, order, None, request, trace) for oid, order in parsed]
        results = await self.group.submit(self.region, submitted)
        if not any(r is DEFERRED for r in results):
            return results
        verdicts = await self._verdicts(account, parsed)
        asked = [
            replace(s, verdict=verdicts[s.order.marketplace_id]) if isinstance(s.order, OrderInput) else s
            for s in submitted
        ]
        return await self.group.submit(self.region, asked)

    async def _verdicts(self, account: UUID, parsed: list[Parsed]) -> dict[str, tuple[Verdict, str]]:
        """Whether each marketplace of the request's valid orders is open for the account (before any unit)."""
        if self.gate is None:
            return {}
        named = {order.marketplace_id for _, order in parsed if isinstance(order, OrderInput)}
        return await self.gate.verdicts(account, named) if named else {}

    def _parse(self, principal: Principal, raw: Any) -> Parsed:
        order_id = raw.get("AmazonOrderId") if isinstance(raw, dict) else None
        order_id = order_id if isinstance(order_id, str) else None
        try:
            return order_id, parse_order(raw, self.region, principal.marketplaces)
        except DomainError as exc:
            return order_id, exc

    async def _apply(self, _: ApiRegion, batch: list[Submitted]) -> list[IngestResult]:
        """One unit of work for a batch of orders (of one or many accounts), decided again after a lost race."""
        for attempt in range(1, INGEST_ATTEMPTS + 1):
            try:
                async with self.units.command() as uow:
                    return await self._ingest_batch(uow, batch)
            except RACES as exc:
                # Another command placed or changed one of these orders first: decide again on its result.
                if attempt == INGEST_ATTEMPTS:
                    raise Conflict("Orders", f"orders changed concurrently, retry: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _ingest_batch(self, uow: UnitOfWork[OrdersStore], batch: Sequence[Submitted]) -> list[IngestResult]:
        """Lock and read every order in one statement, decide each in order (a repeated order sees its earlier
        copy), then one upsert and one event-store append."""
        wanted = [(s.account_id, s.order.amazon_order_id) for s in batch if isinstance(s.order, OrderInput)]
        stored = await uow.store.get_orders_for_update(wanted) if wanted else {}
        learned, deferred = await self._learned(uow, batch, stored)
        current: dict[OrderKey, OrderState] = dict(stored)
        pending: dict[OrderKey, list[tuple[Event, datetime, str | None]]] = {}
        results: list[IngestResult] = []
        for item in batch:
            order = item.order
            if item.request in deferred:
                results.append(DEFERRED)
                continue
            try:
                if isinstance(order, DomainError):
                    raise order
                key = (item.account_id, order.amazon_order_id)
                if key not in current and self.gate is not None:
                    # a new order needs the marketplace opened; updates of placed orders go on after a close
                    verdict = item.verdict or learned.get((item.account_id, order.marketplace_id))
                    # learned or asked for every new order here (a request with an unlearned one is deferred)
                    assert verdict is not None
                    refusal = participation_refusal(order.marketplace_id, verdict, "MarketplaceId")
                    if refusal is not None:
                        raise refusal
                decision = decide(current.get(key), order)
            except DomainError as exc:
                results.append(IngestResult(item.order_id, "rejected", error=exc))
                continue
            if decision.outcome == "unchanged":
                results.append(IngestResult(item.order_id, "unchanged"))
                continue
            events = order_events(item.account_id, self.region, decision)
            current[key] = replace(decision.state, version=decision.state.version + len(events))
            pending.setdefault(key, []).extend((e, order.last_update_date, item.traceparent) for e in events)
            results.append(IngestResult(item.order_id, decision.outcome, events=[e.NAME for e in events]))
        if pending:
            await uow.store.save_orders([(account, current[(account, oid)]) for account, oid in pending])
            await uow.append_streams(  # last: the append lock is held only from here to the commit
                [
                    StreamAppend(
                        stream_id(*key),
                        stored[key].version if key in stored else 0,
                        [e for e, _, _ in items],
                        occurred_at=[t for _, t, _ in items],
                        traceparent=[trace for _, _, trace in items],
                    )
                    for key, items in pending.items()
                ]
            )
        return results

    async def _learned(
        self, uow: UnitOfWork[OrdersStore], batch: Sequence[Submitted], stored: dict[OrderKey, OrderState]
    ) -> tuple[dict[tuple[UUID, str], tuple[Verdict, str]], set[int]]:
        """The gate's learned verdicts for the batch's possibly new orders not asked yet (one statement), and
        the requests (``Submitted.request``) holding one it has not learned: those are left out of this unit."""
        if self.gate is None:
            return {}, set()
        unasked = [
            (s.request, (s.account_id, s.order.marketplace_id))
            for s in batch
            if isinstance(s.order, OrderInput)
            and s.verdict is None
            and (s.account_id, s.order.amazon_order_id) not in stored
        ]
        if not unasked:
            return {}, set()
        learned = await uow.store.learned_verdicts([pair for _, pair in unasked])
        return learned, {request for request, pair in unasked if pair not in learned}

    async def refund(self, principal: Principal, amazon_order_id: str, raw: Any) -> RefundResult:
        """Record a refund once (by refund ID) and publish OrderRefunded; a repeat publishes nothing."""
        principal.require("orders")
        async with self.units.command() as uow:
            order = await uow.store.get_order(principal.account_id, amazon_order_id, for_update=True)
            if order is None or not principal.covers(order.marketplace_id):
                # Outside the scope looks like absent, as for getOrder: do not confirm that the order exists.
                raise NotFound("AmazonOrderId", f"no order {amazon_order_id}")
            with adding(AmazonOrderId=amazon_order_id):
                check_marketplace(order.marketplace_id, self.region, principal.marketplaces, "MarketplaceId")
                refund = parse_refund(raw, order)
                earlier = await uow.store.get_refund(principal.account_id, amazon_order_id, refund.refund_id)
                is_new = decide_refund(order, refund, earlier)
            if not is_new:
                return RefundResult(refund, order, False)
            refunded = order.refunded_amount + refund.amount
            event = OrderRefunded(
                account_id=principal.account_id,
                marketplace_id=order.marketplace_id,
                amazon_order_id=amazon_order_id,
                region=self.region.value,
                amount=Money(currency_code=refund.currency_code, amount=refund.amount),
                refunded_at=refund.refunded_at,
                last_update_date=order.last_update_date,
                refund_id=refund.refund_id,
                total_refunded=Money(currency_code=order.currency_code, amount=refunded),
            )
            expected = order.version
            await uow.store.insert_refund(principal.account_id, amazon_order_id, refund)
            order = replace(order, version=order.version + 1, refunded_amount=refunded)
            await uow.store.save_order(principal.account_id, order)
            # Last: the append lock is held only from here to the commit (the order's row lock, taken above,
            # serializes refunds and ingests of this order).
            stream = stream_id(principal.account_id, amazon_order_id)
            await uow.append(stream, expected, [event], occurred_at=refund.refunded_at)
        return RefundResult(refund, order, True)

    async def get_order(self, principal: Principal, amazon_order_id: str) -> OrderState:
        principal.require("orders")
        async with self.units.query() as store:
            order = await store.get_order(principal.account_id, amazon_order_id)
        if order is None or not principal.covers(order.marketplace_id):
            # Outside the scope looks like absent: do not confirm that the order exists.
            raise NotFound("AmazonOrderId", f"no order {amazon_order_id}")
        return order

    async def get_orders(self, principal: Principal, params: OrdersParams) -> tuple[list[OrderState], str | None]:
        """One getOrders page and the NextToken of the following one (None on the last page)."""
        principal.require("orders")
        query = params.to_query()
        for marketplace_id in query.marketplace_ids:
            check_marketplace(marketplace_id, self.region, principal.marketplaces, "MarketplaceIds")
        async with self.units.query() as store:
            rows = await store.list_orders(principal.account_id, plus_one(query))
        return rows[: query.limit], next_token(query, rows)
