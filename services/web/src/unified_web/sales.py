"""Overview (totals per marketplace, chart, freshness) and orders (filters, keyset paging, detail)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from unified_shared import catalog
from unified_web import domain
from unified_web.upstream import NotAllowed, NotFound
from unified_web.web import deps, render, require_page

router = APIRouter()


@router.get("/")
async def overview(request: Request) -> Response:
    user = await require_page(request, "/")
    q = request.query_params
    try:
        currency = domain.reporting_currency(q.get("currency"))
        granularity = domain.granularity(q.get("granularity"))
    except domain.FormError as exc:
        currency, granularity = "USD", "day"
        error: domain.FormError | None = exc
    else:
        error = None
    start, end = domain.chart_range(granularity, deps(request).clock().date())
    data, series, fresh = await asyncio.gather(
        user.platform.overview(currency),
        user.platform.timeseries(currency, granularity, start, end),
        _freshness(user.platform),
    )
    chart = domain.chart_series(series) if series is not None else None
    context = {
        "overview": data,
        "currency": currency,
        "granularity": granularity,
        "currencies": domain.REPORTING_CURRENCIES,
        "granularities": domain.GRANULARITIES,
        "chart": chart,
        "chart_range": (start, end),
        "chart_json": json.dumps({**chart, "currency": currency}) if chart else "",
        "fresh": fresh,
        "error": error,
        "scope": domain.scope_codes(user.principal),
    }
    template = "overview_body.html" if request.headers.get("hx-target") == "overview-body" else "overview.html"
    return render(request, template, context, user=user, status=422 if error else 200)


async def _freshness(platform: Any) -> dict[str, Any] | None:
    try:
        fresh: dict[str, Any] = await platform.freshness()
        return fresh
    except (NotAllowed, NotFound):
        return None


@router.get("/orders")
async def orders(request: Request) -> Response:
    user = await require_page(request, "/orders")
    query = {k: v for k, v in request.query_params.items()}
    try:
        filters, params = domain.order_filters(query)
    except domain.FormError as exc:
        filters, params = domain.OrderFilters(), {}
        context: dict[str, Any] = {"filters": filters, "error": exc, "orders": [], "next_token": None}
        return render(request, "orders.html", _orders_context(user, context), user=user, status=422)
    page = await user.platform.orders(params)
    context = {
        "filters": filters,
        "error": None,
        "orders": page.get("orders", []),
        "next_token": page.get("next_token"),
        "first_page": "next_token" not in params,
    }
    template = "orders_table.html" if request.headers.get("hx-target") == "orders-table" else "orders.html"
    return render(request, template, _orders_context(user, context), user=user)


def _orders_context(user: Any, context: dict[str, Any]) -> dict[str, Any]:
    scope = domain.scope_codes(user.principal)
    markets = [m.code for m in catalog.all_marketplaces() if scope is None or m.code in scope]
    return {**context, "marketplace_codes": markets, "statuses": domain.ORDER_STATUSES}


@router.get("/orders/{marketplace}/{amazon_order_id}")
async def order_detail(request: Request, marketplace: str, amazon_order_id: str) -> Response:
    """One order: the unified view's detail (refunds, status history) and the regional service's record."""
    user = await require_page(request, "/orders")
    try:
        code = catalog.resolve(marketplace).code
    except catalog.UnknownMarketplace:
        raise NotFound(404, "no such marketplace") from None
    if not domain.ORDER_ID.fullmatch(amazon_order_id):
        raise NotFound(404, "no such order in your marketplaces")
    order = await user.platform.order_detail(amazon_order_id)
    if order.get("marketplace") != code:
        raise NotFound(404, "no such order in your marketplaces")
    regional = await user.platform.order(amazon_order_id, code)
    return render(request, "order.html", {"order": order, "regional": regional}, user=user)
