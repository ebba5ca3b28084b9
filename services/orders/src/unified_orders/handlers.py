"""Order commands: ingest (one or a batch), refund, and the getOrders read.

A request is one transaction. Requests of different orders run side by side: an order's row lock
serializes what touches that order, and the event store's append lock is taken only by the final append.
A batch is applied set-based (one locking read, one upsert, one append); a refused order leaves no trace
while the valid ones of the same batch are applied.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from unified_orders import store
from unified_orders.domain import (
    MAX_BATCH,
    STATUSES,
    Decision,
    InvalidInput,
    OrderInput,
    OrderState,
    check_marketplace,
    decide,
    decide_refund,
    parse_order,
    parse_refund,
    parse_time,
)
from unified_shared import eventstore
from unified_shared.auth import Principal
from unified_shared.bounds import check_line, check_query_instant, cursor_json
from unified_shared.catalog import MARKETPLACES, ApiRegion, by_id
from unified_shared.contracts.orders import Money, OrderPlaced, OrderRefunded, OrderStatusChanged
from unified_shared.events import Event
from unified_shared.participations import Gate, Verdict
from unified_shared.problems import Problem
from unified_shared.runtime import ServiceRuntime

MAX_PAGE = 100
# A batch that lost a race with another command on one of its orders is decided again this often.
INGEST_ATTEMPTS = 5


def problem_of(exc: InvalidInput, **extra: Any) -> Problem:
    return Problem(exc.status, exc.title, exc.detail, field=exc.field, **exc.extra, **extra)


@dataclass(frozen=True, slots=True)
class IngestResult:
    amazon_order_id: str | None
    outcome: str
    problem: dict[str, Any] | None = None
    events: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"AmazonOrderId": self.amazon_order_id, "outcome": self.outcome}
        if self.events:
            out["events"] = self.events
        if self.problem is not None:
            out["problem"] = self.problem
        return out


def _order_events(account_id: UUID, region: ApiRegion, decision: Decision) -> list[Event]:
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
    return []


RETRY_AFTER_S = 1


def participation_refusal(marketplace_id: str, verdict: tuple[Verdict, str]) -> InvalidInput | None:
    """None where new orders may be placed; else the refusal naming the marketplace (422, or 503 to retry)."""
    kind, why = verdict
    if kind == "open":
        return None
    marketplace = by_id(marketplace_id)
    if kind == "not-open":
        return InvalidInput(
            "MarketplaceId",
            f"the account has not opened marketplace {marketplace.code} ({marketplace_id}): {why}",
            marketplace_id=marketplace_id,
        )
    return InvalidInput(
        "MarketplaceId",
        f"marketplace {marketplace.code} ({marketplace_id}) is not known to be open for this account yet (a fresh"
        f" opening takes a moment to arrive): retry after {RETRY_AFTER_S} s",
        status=503,
        marketplace_id=marketplace_id,
        retry_after=RETRY_AFTER_S,
    )


class OrdersHandlers:
    def __init__(self, runtime: ServiceRuntime, region: ApiRegion, gate: Gate | None = None) -> None:
        self.runtime = runtime
        self.region = region
        self.gate = gate

    async def ingest(self, principal: Principal, raw_orders: Sequence[Any]) -> list[IngestResult]:
        """Apply a batch set-based: validate in Python, lock and read every order in one statement, decide
        each in order (a repeated order sees its earlier copy), then one upsert and one event-store append.
        A refused order is reported with its problem body and changes nothing; the others are applied."""
        principal.require("orders")
        if not 1 <= len(raw_orders) <= MAX_BATCH:
            raise Problem(422, "Invalid request", f"Orders must hold 1 to {MAX_BATCH} orders", field="Orders")
        parsed = [self._parse(principal, raw) for raw in raw_orders]
        verdicts = await self._verdicts(principal, raw_orders)
        for attempt in range(1, INGEST_ATTEMPTS + 1):
            try:
                async with self.runtime.pool.acquire() as conn, conn.transaction():
                    results = await self._ingest_batch(conn, principal, parsed, verdicts)
                break
            except (eventstore.ConcurrencyError, asyncpg.DeadlockDetectedError) as exc:
                # Another command placed or changed one of these orders first: decide again on its result.
                if attempt == INGEST_ATTEMPTS:
                    raise Problem(
                        409, "Conflict", f"orders changed concurrently, retry: {exc}", field="Orders"
                    ) from None
        if any(r.events for r in results):
            self.runtime.notify_relay()
        return results

    async def _verdicts(self, principal: Principal, raw_orders: Sequence[Any]) -> dict[str, tuple[Verdict, str]]:
        """Whether each marketplace named in the batch is open for the account (before the transaction)."""
        if self.gate is None:
            return {}
        named = {raw.get("MarketplaceId") for raw in raw_orders if isinstance(raw, dict)}
        known = {m for m in named if isinstance(m, str) and m in MARKETPLACES}
        return await self.gate.verdicts(principal.account_id, known) if known else {}

    def _parse(self, principal: Principal, raw: Any) -> tuple[str | None, OrderInput | InvalidInput]:
        order_id = raw.get("AmazonOrderId") if isinstance(raw, dict) else None
        order_id = order_id if isinstance(order_id, str) else None
        try:
            return order_id, parse_order(raw, self.region, principal.marketplaces)
        except InvalidInput as exc:
            return order_id, exc

    async def _ingest_batch(
        self,
        conn: asyncpg.Connection,
        principal: Principal,
        parsed: Sequence[tuple[str | None, OrderInput | InvalidInput]],
        verdicts: dict[str, tuple[Verdict, str]],
    ) -> list[IngestResult]:
        account = principal.account_id
        wanted = [p.amazon_order_id for _, p in parsed if isinstance(p, OrderInput)]
        stored = await store.get_orders_for_update(conn, account, wanted) if wanted else {}
        current: dict[str, OrderState] = dict(stored)
        pending: dict[str, list[tuple[Event, datetime]]] = {}
        results: list[IngestResult] = []
        for order_id, order in parsed:
            try:
                if isinstance(order, InvalidInput):
                    raise order
                if order.amazon_order_id not in current and self.gate is not None:
                    # a new order needs the marketplace opened; updates of placed orders go on after a close
                    refusal = participation_refusal(order.marketplace_id, verdicts[order.marketplace_id])
                    if refusal is not None:
                        raise refusal
                decision = decide(current.get(order.amazon_order_id), order)
            except InvalidInput as exc:
                results.append(
                    IngestResult(order_id, "rejected", problem=problem_of(exc, AmazonOrderId=order_id).body())
                )
                continue
            if decision.outcome == "unchanged":
                results.append(IngestResult(order_id, "unchanged"))
                continue
            events = _order_events(account, self.region, decision)
            current[order.amazon_order_id] = _with_version(decision.state, decision.state.version + len(events))
            pending.setdefault(order.amazon_order_id, []).extend((e, order.last_update_date) for e in events)
            results.append(IngestResult(order_id, decision.outcome, events=[e.NAME for e in events]))
        if pending:
            await store.save_orders(conn, account, [current[oid] for oid in pending])
            await eventstore.append_streams(  # last: the append lock is held only from here to the commit
                conn,
                [
                    eventstore.StreamAppend(
                        store.stream_id(account, oid),
                        stored[oid].version if oid in stored else 0,
                        [e for e, _ in items],
                        occurred_at=[t for _, t in items],
                    )
                    for oid, items in pending.items()
                ],
            )
        return results

    async def refund(self, principal: Principal, amazon_order_id: str, raw: Any) -> dict[str, Any]:
        """Record a refund once (by refund ID) and publish OrderRefunded; a repeat publishes nothing."""
        principal.require("orders")
        async with self.runtime.pool.acquire() as conn, conn.transaction():
            order = await store.get_order(conn, principal.account_id, amazon_order_id, for_update=True)
            if order is None or not principal.covers(order.marketplace_id):
                # Outside the scope looks like absent, as for getOrder: do not confirm that the order exists.
                raise Problem(404, "Not found", f"no order {amazon_order_id}", field="AmazonOrderId")
            try:
                check_marketplace(order.marketplace_id, self.region, principal.marketplaces)
                refund = parse_refund(raw, order)
                earlier = await store.get_refund(conn, principal.account_id, amazon_order_id, refund.refund_id)
                is_new = decide_refund(order, refund, earlier)
            except InvalidInput as exc:
                raise problem_of(exc, AmazonOrderId=amazon_order_id) from None
            if is_new:
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
                stream = store.stream_id(principal.account_id, amazon_order_id)
                expected = order.version
                await store.insert_refund(conn, principal.account_id, amazon_order_id, refund)
                order = _with_version(order, order.version + 1, refunded_amount=refunded)
                await store.save_order(conn, principal.account_id, order)
                # Last: the append lock is held only from here to the commit (the order's row lock, taken
                # above, serializes refunds and ingests of this order).
                await eventstore.append(conn, stream, expected, [event], occurred_at=refund.refunded_at)
        if is_new:
            self.runtime.notify_relay()
        return {
            "AmazonOrderId": amazon_order_id,
            "RefundId": refund.refund_id,
            "outcome": "refunded" if is_new else "unchanged",
            "RefundAmount": {"CurrencyCode": refund.currency_code, "Amount": format(refund.amount, "f")},
            "RefundedAt": _iso(refund.refunded_at),
            "RefundedTotal": {"CurrencyCode": order.currency_code, "Amount": format(order.refunded_amount, "f")},
        }

    async def get_order(self, principal: Principal, amazon_order_id: str) -> OrderState:
        principal.require("orders")
        async with self.runtime.pool.acquire() as conn:
            order = await store.get_order(conn, principal.account_id, amazon_order_id)
        if order is None or not principal.covers(order.marketplace_id):
            # Outside the scope looks like absent: do not confirm that the order exists.
            raise Problem(404, "Not found", f"no order {amazon_order_id}", field="AmazonOrderId")
        return order

    async def get_orders(self, principal: Principal, params: OrdersParams) -> tuple[list[OrderState], str | None]:
        """One getOrders page and the NextToken of the following one (None on the last page)."""
        principal.require("orders")
        query = params.to_query()
        for marketplace_id in query.marketplace_ids:
            try:
                check_marketplace(marketplace_id, self.region, principal.marketplaces, field="MarketplaceIds")
            except InvalidInput as exc:
                raise problem_of(exc) from None
        async with self.runtime.pool.acquire() as conn:
            rows = await store.list_orders(conn, principal.account_id, _plus_one(query))
        page, more = rows[: query.limit], len(rows) > query.limit
        token = None
        if more:
            last = page[-1]
            key_time = last.purchase_date if query.sort == "created" else last.last_update_date
            token = encode_token(query, (key_time, last.amazon_order_id))
        return page, token


def _plus_one(query: store.OrderQuery) -> store.OrderQuery:
    """Fetch one more row than the page holds: it tells whether a next page exists."""
    return store.OrderQuery(
        query.marketplace_ids, query.sort, query.after, query.before, query.statuses, query.limit + 1, query.after_key
    )


def _with_version(state: OrderState, version: int, **changes: Any) -> OrderState:
    from dataclasses import replace

    return replace(state, version=version, **changes)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# -- getOrders parameters and NextToken ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrdersParams:
    """getOrders query parameters as received (strings), validated by ``to_query``."""

    marketplace_ids: list[str]
    created_after: str | None = None
    created_before: str | None = None
    last_updated_after: str | None = None
    last_updated_before: str | None = None
    order_statuses: list[str] = field(default_factory=list)
    max_results: int | None = None
    next_token: str | None = None

    def to_query(self) -> store.OrderQuery:
        if self.next_token:
            # As in SP-API: with NextToken the filters of the first request apply.
            return decode_token(self.next_token)
        if not self.marketplace_ids:
            raise Problem(422, "Invalid request", "MarketplaceIds is required", field="MarketplaceIds")
        if len(self.marketplace_ids) > 50:
            raise Problem(422, "Invalid request", "at most 50 MarketplaceIds", field="MarketplaceIds")
        if (self.created_after is None) == (self.last_updated_after is None):
            raise Problem(
                422,
                "Invalid request",
                "exactly one of CreatedAfter or LastUpdatedAfter is required",
                field="CreatedAfter",
            )
        if self.created_after is None and self.created_before is not None:
            raise Problem(422, "Invalid request", "CreatedBefore needs CreatedAfter", field="CreatedBefore")
        if self.last_updated_after is None and self.last_updated_before is not None:
            raise Problem(422, "Invalid request", "LastUpdatedBefore needs LastUpdatedAfter", field="LastUpdatedBefore")
        for status in self.order_statuses:
            if status not in STATUSES:
                raise Problem(422, "Invalid request", f"unknown OrderStatuses value {status!r}", field="OrderStatuses")
        limit = MAX_PAGE if self.max_results is None else self.max_results
        if not 1 <= limit <= MAX_PAGE:
            raise Problem(
                422, "Invalid request", f"MaxResultsPerPage must be 1 to {MAX_PAGE}", field="MaxResultsPerPage"
            )
        try:
            if self.created_after is not None:
                sort: store.SortKey = "created"
                after = parse_time(self.created_after, "CreatedAfter")
                before = parse_time(self.created_before, "CreatedBefore") if self.created_before else None
            else:
                sort = "updated"
                after = parse_time(self.last_updated_after, "LastUpdatedAfter")
                before = parse_time(self.last_updated_before, "LastUpdatedBefore") if self.last_updated_before else None
        except InvalidInput as exc:
            raise Problem(422, "Invalid request", exc.detail, field=exc.field) from None
        return store.OrderQuery(
            self.marketplace_ids, sort, after, before, list(dict.fromkeys(self.order_statuses)), limit
        )


def encode_token(query: store.OrderQuery, key: tuple[datetime, str]) -> str:
    """Opaque to clients: the first request's filters plus the keyset position, base64url-encoded."""
    data = {
        "m": list(query.marketplace_ids),
        "s": query.sort,
        "a": query.after.isoformat(),
        "b": query.before.isoformat() if query.before else None,
        "o": list(query.statuses),
        "n": query.limit,
        "k": [key[0].isoformat(), key[1]],
    }
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> store.OrderQuery:
    try:
        data = cursor_json(token)  # refuses NaN/Infinity, which int() cannot take
        sort = data["s"]
        if sort not in ("created", "updated"):
            raise ValueError(sort)
        limit = int(data["n"])
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(limit)
        statuses = [str(s) for s in data["o"]]
        if any(s not in STATUSES for s in statuses):
            raise ValueError(statuses)
        return store.OrderQuery(
            marketplace_ids=[str(m) for m in data["m"]],
            sort=sort,
            after=check_query_instant(datetime.fromisoformat(data["a"])),
            before=check_query_instant(datetime.fromisoformat(data["b"])) if data["b"] else None,
            statuses=statuses,
            limit=limit,
            after_key=(check_query_instant(datetime.fromisoformat(data["k"][0])), check_line(str(data["k"][1]))),
        )
    except (ValueError, KeyError, TypeError, IndexError, OverflowError):
        raise Problem(422, "Invalid request", "NextToken is not valid", field="NextToken") from None
