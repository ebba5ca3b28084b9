"""HTTP API, shaped like SP-API Orders v0: ingest orders, record refunds, getOrders / getOrder."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from unified_orders.domain import OrderState
from unified_orders.handlers import MAX_PAGE, IngestResult, OrdersHandlers, OrdersParams
from unified_orders.models import (
    ORDER_ID_PATTERN,
    IngestOut,
    OrderIn,
    OrderPayload,
    OrdersIn,
    OrdersPayload,
    RefundIn,
    RefundOut,
    RejectedOrder,
)
from unified_shared.auth import Principal, sp_api_principal
from unified_shared.bounds import Cursor, QueryInstant
from unified_shared.problems import PROBLEM_JSON, validation_problem, with_sp_api_errors

router = APIRouter(prefix="/orders/v0", tags=["orders"])

AmazonOrderIdPath = Annotated[str, Path(pattern=ORDER_ID_PATTERN)]
# SP-API sends arrays comma-separated (repeated parameters work too): each value is a list of IDs/statuses.
MarketplaceIdsParam = Annotated[str, Field(max_length=750, pattern="^[A-Z0-9, ]*$")]
StatusesParam = Annotated[str, Field(max_length=200, pattern="^[A-Za-z, ]*$")]
EXAMPLE_ORDER = {
    "AmazonOrderId": "302-1234567-1234567",
    "PurchaseDate": "2026-09-01T10:00:00Z",
    "LastUpdateDate": "2026-09-01T10:05:00Z",
    "OrderStatus": "Unshipped",
    "FulfillmentChannel": "MFN",
    "OrderTotal": {"CurrencyCode": "EUR", "Amount": "19.99"},
    "NumberOfItemsShipped": 0,
    "NumberOfItemsUnshipped": 2,
    "MarketplaceId": "A1PA6795UKMFR9",
}


def handlers(request: Request) -> OrdersHandlers:
    h: OrdersHandlers = request.app.state.handlers
    return h


def _iso(value: Any) -> str:
    return str(value.isoformat()).replace("+00:00", "Z")


def order_json(order: OrderState) -> dict[str, Any]:
    """An order in SP-API's Order shape, plus RefundedTotal (ours)."""
    return {
        "AmazonOrderId": order.amazon_order_id,
        "PurchaseDate": _iso(order.purchase_date),
        "LastUpdateDate": _iso(order.last_update_date),
        "OrderStatus": order.order_status,
        "FulfillmentChannel": order.fulfillment_channel,
        "NumberOfItemsShipped": order.items_shipped,
        "NumberOfItemsUnshipped": order.items_unshipped,
        "OrderTotal": {"CurrencyCode": order.currency_code, "Amount": format(order.amount, "f")},
        "RefundedTotal": {"CurrencyCode": order.currency_code, "Amount": format(order.refunded_amount, "f")},
        "MarketplaceId": order.marketplace_id,
    }


def _split(values: list[str] | None) -> list[str]:
    """SP-API sends arrays comma-separated; repeated parameters are accepted too."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _rejected(order: RejectedOrder) -> dict[str, Any]:
    """The problem of an order that failed the model, as the domain's refusals look."""
    return validation_problem(order.errors, "Invalid order", AmazonOrderId=order.amazon_order_id).body()


@router.post(
    "/orders",
    summary="Ingest one SP-API order or a batch {Orders: [...]} of up to 100",
    response_model=IngestOut,
)
async def ingest_orders(
    payload: OrdersIn = Body(..., examples=[{"Orders": [EXAMPLE_ORDER]}]),
    principal: Principal = Depends(sp_api_principal),
    h: OrdersHandlers = Depends(handlers),
) -> JSONResponse:
    principal.require("orders")
    orders = payload.orders()
    valid = [o.raw() for o in orders if isinstance(o, OrderIn)]
    applied = iter(await h.ingest(principal, valid) if valid else [])
    results = [
        next(applied).to_json()
        if isinstance(o, OrderIn)
        else IngestResult(o.amazon_order_id, "rejected").to_json() | {"problem": _rejected(o)}
        for o in orders
    ]
    if len(results) == 1 and results[0].get("problem") is not None:
        problem = dict(results[0]["problem"])
        problem["instance"] = "/orders/v0/orders"
        headers = {"Retry-After": str(problem["retry_after"])} if "retry_after" in problem else None
        return JSONResponse(
            with_sp_api_errors(problem), status_code=int(problem["status"]), media_type=PROBLEM_JSON, headers=headers
        )
    return JSONResponse({"results": results})


@router.post(
    "/orders/{amazon_order_id}/refunds",
    summary="Record a refund (idempotent by RefundId)",
    response_model=RefundOut,
)
async def refund_order(
    amazon_order_id: AmazonOrderIdPath,
    payload: RefundIn = Body(
        ...,
        examples=[{"RefundAmount": {"CurrencyCode": "EUR", "Amount": "5.00"}, "RefundedAt": "2026-09-03T10:00:00Z"}],
    ),
    principal: Principal = Depends(sp_api_principal),
    h: OrdersHandlers = Depends(handlers),
) -> dict[str, Any]:
    return await h.refund(principal, amazon_order_id, payload.raw())


def _text(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@router.get(
    "/orders",
    summary="getOrders: this region's orders, keyset-paginated with NextToken",
    response_model=OrdersPayload,
    response_model_exclude_unset=True,
)
async def get_orders(
    *,
    marketplace_ids: list[MarketplaceIdsParam] | None = Query(None, alias="MarketplaceIds", max_length=50),
    created_after: QueryInstant | None = Query(None, alias="CreatedAfter"),
    created_before: QueryInstant | None = Query(None, alias="CreatedBefore"),
    last_updated_after: QueryInstant | None = Query(None, alias="LastUpdatedAfter"),
    last_updated_before: QueryInstant | None = Query(None, alias="LastUpdatedBefore"),
    order_statuses: list[StatusesParam] | None = Query(None, alias="OrderStatuses", max_length=20),
    max_results: int | None = Query(None, alias="MaxResultsPerPage", ge=1, le=MAX_PAGE),
    next_token: Cursor | None = Query(None, alias="NextToken"),
    principal: Principal = Depends(sp_api_principal),
    h: OrdersHandlers = Depends(handlers),
) -> dict[str, Any]:
    params = OrdersParams(
        marketplace_ids=_split(marketplace_ids),
        created_after=_text(created_after),
        created_before=_text(created_before),
        last_updated_after=_text(last_updated_after),
        last_updated_before=_text(last_updated_before),
        order_statuses=_split(order_statuses),
        max_results=max_results,
        next_token=next_token,
    )
    orders, token = await h.get_orders(principal, params)
    payload: dict[str, Any] = {"Orders": [order_json(o) for o in orders]}
    if token is not None:
        payload["NextToken"] = token
    return {"payload": payload}


@router.get(
    "/orders/{amazon_order_id}",
    summary="getOrder: one order of this region",
    response_model=OrderPayload,
)
async def get_order(
    amazon_order_id: AmazonOrderIdPath,
    principal: Principal = Depends(sp_api_principal),
    h: OrdersHandlers = Depends(handlers),
) -> dict[str, Any]:
    return {"payload": order_json(await h.get_order(principal, amazon_order_id))}
