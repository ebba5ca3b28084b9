"""HTTP API, shaped like SP-API Orders v0: ingest orders, record refunds, getOrders / getOrder."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse

from unified_orders.domain import OrderState
from unified_orders.handlers import OrdersHandlers, OrdersParams
from unified_shared.auth import Principal, sp_api_principal
from unified_shared.problems import PROBLEM_JSON, Problem, with_sp_api_errors

router = APIRouter(prefix="/orders/v0", tags=["orders"])


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


@router.post("/orders", summary="Ingest one SP-API order or a batch {Orders: [...]} of up to 100")
async def ingest_orders(
    payload: Any = Body(..., examples=[{"Orders": [{"AmazonOrderId": "111-1234567-1234567"}]}]),
    principal: Principal = Depends(sp_api_principal),
    h: OrdersHandlers = Depends(handlers),
) -> JSONResponse:
    if isinstance(payload, dict) and "Orders" in payload:
        raw_orders = payload["Orders"]
        if not isinstance(raw_orders, list):
            raise Problem(422, "Invalid request", "Orders must be a list of orders", field="Orders")
    elif isinstance(payload, dict):
        raw_orders = [payload]
    else:
        raise Problem(422, "Invalid request", "the body must be an order or {Orders: [...]}", field="Orders")
    results = await h.ingest(principal, raw_orders)
    if len(results) == 1 and results[0].problem is not None:
        problem = dict(results[0].problem)
        problem["instance"] = "/orders/v0/orders"
        headers = {"Retry-After": str(problem["retry_after"])} if "retry_after" in problem else None
        return JSONResponse(
            with_sp_api_errors(problem), status_code=int(problem["status"]), media_type=PROBLEM_JSON, headers=headers
        )
    return JSONResponse({"results": [r.to_json() for r in results]})


@router.post("/orders/{amazon_order_id}/refunds", summary="Record a refund (idempotent by RefundId)")
async def refund_order(
    amazon_order_id: str,
    payload: Any = Body(
        ...,
        examples=[{"RefundAmount": {"CurrencyCode": "EUR", "Amount": "5.00"}, "RefundedAt": "2026-09-03T10:00:00Z"}],
    ),
    principal: Principal = Depends(sp_api_principal),
    h: OrdersHandlers = Depends(handlers),
) -> dict[str, Any]:
    return await h.refund(principal, amazon_order_id, payload)


@router.get("/orders", summary="getOrders: this region's orders, keyset-paginated with NextToken")
async def get_orders(
    *,
    marketplace_ids: list[str] | None = Query(None, alias="MarketplaceIds"),
    created_after: str | None = Query(None, alias="CreatedAfter"),
    created_before: str | None = Query(None, alias="CreatedBefore"),
    last_updated_after: str | None = Query(None, alias="LastUpdatedAfter"),
    last_updated_before: str | None = Query(None, alias="LastUpdatedBefore"),
    order_statuses: list[str] | None = Query(None, alias="OrderStatuses"),
    max_results: int | None = Query(None, alias="MaxResultsPerPage"),
    next_token: str | None = Query(None, alias="NextToken"),
    principal: Principal = Depends(sp_api_principal),
    h: OrdersHandlers = Depends(handlers),
) -> dict[str, Any]:
    params = OrdersParams(
        marketplace_ids=_split(marketplace_ids),
        created_after=created_after,
        created_before=created_before,
        last_updated_after=last_updated_after,
        last_updated_before=last_updated_before,
        order_statuses=_split(order_statuses),
        max_results=max_results,
        next_token=next_token,
    )
    orders, token = await h.get_orders(principal, params)
    payload: dict[str, Any] = {"Orders": [order_json(o) for o in orders]}
    if token is not None:
        payload["NextToken"] = token
    return {"payload": payload}


@router.get("/orders/{amazon_order_id}", summary="getOrder: one order of this region")
async def get_order(
    amazon_order_id: str,
    principal: Principal = Depends(sp_api_principal),
    h: OrdersHandlers = Depends(handlers),
) -> dict[str, Any]:
    return {"payload": order_json(await h.get_order(principal, amazon_order_id))}
