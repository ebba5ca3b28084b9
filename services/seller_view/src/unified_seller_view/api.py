"""HTTP API of the unified view (all under /v1/accounts/{account_id}/, bearer tokens from identity).

Every request: the path's account must be the token's (else 404), only marketplaces in the token's scope
are visible (in lists and in totals), and the answer comes from one read-only snapshot of the generation
the pointer names at that moment.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from unified_seller_view import domain, overview_queries, queries, timeseries
from unified_seller_view.generations import TOPICS, Generation, live_generation, use_schema
from unified_shared import catalog
from unified_shared.auth import Principal, current_principal
from unified_shared.bounds import Cursor, QueryInstant
from unified_shared.clock import Clock
from unified_shared.contracts.orders import OrderStatus
from unified_shared.errors import Forbidden, Invalid
from unified_shared.money import UnknownCurrency, minor_units
from unified_shared.problems import Problem

router = APIRouter(prefix="/v1/accounts/{account_id}", tags=["unified view"])

ORDER_STATUSES = frozenset(get_args(OrderStatus))  # the orders contract's


@contextlib.asynccontextmanager
async def read_view(request: Request) -> AsyncIterator[tuple[asyncpg.Connection, Generation]]:
    """A read-only, repeatable-read snapshot of the live generation (pointer read in the same snapshot)."""
    pool: asyncpg.Pool = request.app.state.runtime.pool
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        gen = await live_generation(conn)
        if gen is None:
            raise Problem(503, "View not ready", "the read model has not been created yet")
        await use_schema(conn, gen.schema)
        yield conn, gen


def _account(principal: Principal, account_id: UUID) -> None:
    principal.require_account(account_id)


def _require_any(principal: Principal, *permissions: str) -> None:
    if not any(principal.has(p) for p in permissions):
        raise Forbidden(None, f"this call needs one of the permissions: {', '.join(permissions)}")


def _scope(principal: Principal, requested: list[str] | None) -> list[str] | None:
    """Marketplace IDs to show: the token's scope, narrowed to ``requested`` (codes or IDs) when given."""
    wanted = None
    if requested:
        try:
            wanted = domain.normalize_marketplaces(requested)
        except catalog.UnknownMarketplace as exc:
            raise Invalid("marketplace", str(exc), title="Unknown marketplace") from None
    return domain.visible_marketplaces(principal.marketplaces, wanted)


def _as_of(request: Request, as_of: datetime | None) -> datetime:
    if as_of is None:
        clock: Clock = request.app.state.clock
        return clock()
    if as_of.tzinfo is None:
        raise Invalid("as_of", "as_of must carry a time zone (e.g. 2026-10-01T12:00:00Z)")
    return as_of


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Invalid(name, f"{name} must carry a time zone (e.g. 2026-10-01T00:00:00Z)")
    return value


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [p.strip() for v in values for p in v.split(",") if p.strip()]
    return out or None


Principal_ = Annotated[Principal, Depends(current_principal)]
# Lists come repeated or comma-separated; each value is bounded in length and alphabet.
MarketplaceList = Annotated[str, Field(max_length=750, pattern="^[A-Za-z0-9, ]*$")]
StatusList = Annotated[str, Field(max_length=300, pattern="^[A-Za-z, ]*$")]
OrderIdList = Annotated[str, Field(max_length=2000, pattern="^[0-9, -]*$")]


def _reporting_access(
    principal: Principal, account_id: UUID, currency: str, marketplace: list[str] | None, *permissions: str
) -> tuple[str, list[str] | None]:
    """A report's checks, in this order: the caller's account, one of ``permissions``, the reporting currency
    (see ``_reporting_currency``), then the marketplaces it may show (its scope narrowed to those asked for)."""
    _account(principal, account_id)
    _require_any(principal, *permissions)
    reporting = _reporting_currency(currency)
    return reporting, _scope(principal, _split(marketplace))


def _reporting_currency(currency: str) -> str:
    """The reporting currency asked for, upper-cased; one ISO 4217 knows, else a 422 naming ``currency``."""
    reporting = currency.upper()
    try:
        minor_units(reporting)
    except UnknownCurrency as exc:
        raise Invalid("currency", str(exc), title="Unknown currency") from None
    return reporting


@router.get("/overview")
async def get_overview(
    request: Request,
    *,
    account_id: UUID,
    principal: Principal_,
    currency: str = Query("USD", pattern="^[A-Za-z]{3}$", description="reporting currency (ISO 4217)"),
    marketplace: list[MarketplaceList] | None = Query(
        None, max_length=50, description="marketplace IDs or codes (repeat or comma-separate)"
    ),
    purchased_after: QueryInstant | None = Query(None, description="only orders purchased at or after this time"),
    purchased_before: QueryInstant | None = Query(None, description="only orders purchased before this time"),
) -> dict[str, Any]:
    reporting, scope = _reporting_access(principal, account_id, currency, marketplace, "reports", "orders")
    async with read_view(request) as (conn, _gen):
        return await overview_queries.overview(
            conn,
            overview_queries.OverviewQuery(
                account_id,
                reporting,
                scope,
                _aware("purchased_after", purchased_after),
                _aware("purchased_before", purchased_before),
            ),
        )


@router.get("/overview/timeseries")
async def get_overview_timeseries(
    request: Request,
    *,
    account_id: UUID,
    principal: Principal_,
    granularity: Literal["day", "week", "month"] = Query("day", description="bucket size (weeks start Monday)"),
    currency: str = Query("USD", min_length=3, max_length=3, description="reporting currency (ISO 4217)"),
    marketplace: list[str] | None = Query(None, description="marketplace IDs or codes (repeat or comma-separate)"),
    from_: date | None = Query(None, alias="from", description="first purchase day (UTC), included"),
    to: date | None = Query(None, description="last purchase day (UTC), included; default today"),
) -> dict[str, Any]:
    """Sales, units, orders and refunds per marketplace per bucket (the overview's rules, scope-filtered)."""
    reporting, scope = _reporting_access(principal, account_id, currency, marketplace, "reports", "orders")
    clock: Clock = request.app.state.clock
    last = to or clock().astimezone(UTC).date()
    first = from_ or timeseries.default_range(last, granularity)[0]
    try:
        timeseries.buckets(first, last, granularity)
    except timeseries.BadRange as exc:
        raise Invalid(exc.field, str(exc), title="Invalid range") from None
    async with read_view(request) as (conn, _gen):
        return await timeseries.timeseries(
            conn,
            account_id,
            marketplaces=scope,
            reporting_currency=reporting,
            granularity=granularity,
            first=first,
            last=last,
        )


@router.get("/orders")
async def get_orders(
    request: Request,
    *,
    account_id: UUID,
    principal: Principal_,
    marketplace: list[MarketplaceList] | None = Query(None, max_length=50, description="marketplace IDs or codes"),
    status: list[StatusList] | None = Query(
        None, max_length=20, description="order statuses (SP-API OrderStatus values)"
    ),
    purchased_after: QueryInstant | None = Query(None),
    purchased_before: QueryInstant | None = Query(None),
    order_id: list[OrderIdList] | None = Query(None, max_length=100, description="AmazonOrderIds"),
    max_results: int = Query(50, ge=1, le=100),
    next_token: Cursor | None = Query(None, description="the NextToken of the previous page"),
    MarketplaceIds: list[MarketplaceList] | None = Query(
        None, max_length=50, description="SP-API alias of marketplace"
    ),
    OrderStatuses: list[StatusList] | None = Query(None, max_length=20, description="SP-API alias of status"),
    CreatedAfter: QueryInstant | None = Query(None, description="SP-API alias of purchased_after"),
    CreatedBefore: QueryInstant | None = Query(None, description="SP-API alias of purchased_before"),
    AmazonOrderIds: list[OrderIdList] | None = Query(None, max_length=100, description="SP-API alias of order_id"),
    MaxResultsPerPage: int | None = Query(None, ge=1, le=100, description="SP-API alias of max_results"),
    NextToken: Cursor | None = Query(None, description="SP-API alias of next_token"),
) -> dict[str, Any]:
    _account(principal, account_id)
    _require_any(principal, "orders")
    statuses = _split((status or []) + (OrderStatuses or []))
    if statuses:
        unknown = sorted(set(statuses) - ORDER_STATUSES)
        if unknown:
            raise Problem(400, "Unknown order status", f"unknown status: {', '.join(unknown)}", field="status")
    scope = _scope(principal, _split((marketplace or []) + (MarketplaceIds or [])))
    token = next_token or NextToken
    async with read_view(request) as (conn, _gen):
        try:
            return await queries.orders(
                conn,
                domain.OrdersQuery(
                    account_id,
                    marketplaces=scope,
                    statuses=statuses,
                    purchased_after=_aware("purchased_after", purchased_after or CreatedAfter),
                    purchased_before=_aware("purchased_before", purchased_before or CreatedBefore),
                    order_ids=_split((order_id or []) + (AmazonOrderIds or [])),
                ),
                next_token=token,
                max_results=MaxResultsPerPage or max_results,
            )
        except domain.BadPageToken as exc:
            raise Problem(
                400, "Invalid NextToken", str(exc), field="next_token" if next_token else "NextToken"
            ) from None


@router.get("/messages")
async def get_messages(
    request: Request,
    account_id: UUID,
    principal: Principal_,
    marketplace: list[MarketplaceList] | None = Query(None, max_length=50, description="marketplace IDs or codes"),
    as_of: QueryInstant | None = Query(None, description="evaluate deadlines at this time instead of now"),
) -> dict[str, Any]:
    _account(principal, account_id)
    _require_any(principal, "messages")
    scope = _scope(principal, _split(marketplace))
    when = _as_of(request, as_of)
    async with read_view(request) as (conn, _gen):
        return await queries.buyer_messages(conn, account_id, marketplaces=scope, as_of=when)


@router.get("/subscriptions")
async def get_subscriptions(request: Request, account_id: UUID, principal: Principal_) -> dict[str, Any]:
    _account(principal, account_id)
    scope = _scope(principal, None)
    async with read_view(request) as (conn, _gen):
        return await queries.subscriptions(conn, account_id, scope)


@router.get("/invoices")
async def get_invoices(
    request: Request,
    account_id: UUID,
    principal: Principal_,
    limit: int = Query(12, ge=1, le=100, description="how many of the latest invoices"),
) -> dict[str, Any]:
    _account(principal, account_id)
    # One rule with billing's own API: invoices are the owner's (with the billing permission), nobody else's.
    if principal.role != "owner" or "billing" not in principal.permissions:
        raise Problem(403, "Forbidden", "invoices are visible to the account owner with the 'billing' permission only")
    scope = _scope(principal, None)
    async with read_view(request) as (conn, _gen):
        return await queries.invoices(conn, account_id, scope, limit)


@router.get("/freshness")
async def get_freshness(request: Request, account_id: UUID, principal: Principal_) -> dict[str, Any]:
    """How fresh the view is: the newest applied event's time and age, whether the broker answers fetches,
    and the consumer lag per topic (unknown, never 0, while the broker is unreachable)."""
    _account(principal, account_id)
    runtime = request.app.state.runtime
    async with read_view(request) as (conn, gen):
        rows = await conn.fetch(
            """SELECT topic, partition, next_offset, last_event_time, updated_at FROM public.consumer_offsets
               WHERE consumer = $1 ORDER BY topic, partition""",
            gen.consumer_name,
        )
    consumer = runtime.consumer
    live_lag: dict[tuple[str, int], int] = {}
    fetch_age: float | None = None
    reachable = False
    if consumer is not None and consumer.name == gen.consumer_name:
        fetch_age = consumer.last_fetch_age_s()
        reachable = consumer.fetching()
        if reachable:  # a lag computed from high-water marks the broker no longer updates is no lag at all
            live_lag = dict(consumer.lag)
    topics: dict[str, dict[str, Any]] = {t: {"lag": None, "newest_event_time": None, "partitions": []} for t in TOPICS}
    newest_by_topic: dict[str, datetime] = {}
    for r in rows:
        entry = topics.setdefault(r["topic"], {"lag": None, "newest_event_time": None, "partitions": []})
        when = r["last_event_time"]
        entry["partitions"].append(
            {
                "partition": r["partition"],
                "next_offset": r["next_offset"],
                "lag": live_lag.get((r["topic"], r["partition"])),
                "newest_event_time": when.isoformat() if when else None,
            }
        )
        if when is not None and (r["topic"] not in newest_by_topic or when > newest_by_topic[r["topic"]]):
            newest_by_topic[r["topic"]] = when
    for topic, when in newest_by_topic.items():
        topics[topic]["newest_event_time"] = when.isoformat()
    for (topic, _partition), lag in live_lag.items():
        if topic in topics:
            topics[topic]["lag"] = (topics[topic]["lag"] or 0) + lag
    newest = max((r["last_event_time"] for r in rows if r["last_event_time"] is not None), default=None)
    clock: Clock = request.app.state.clock
    return {
        "broker": "reachable" if reachable else "unreachable",
        "consumer_last_fetch_age_s": round(fetch_age, 1) if fetch_age is not None else None,
        "newest_event_age_s": round((clock() - newest).total_seconds(), 1) if newest else None,
        "generation": gen.number,
        "schema": gen.schema,
        "consumer": gen.consumer_name,
        "newest_event_time": newest.isoformat() if newest else None,
        "total_lag": sum(live_lag.values()) if live_lag else None,
        "lag_known": bool(live_lag),
        "topics": topics,
    }
