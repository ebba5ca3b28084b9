"""GET /v1/accounts/{account_id}/orders/{amazon_order_id}: one order as the order list shows it, plus its
status history (each status with its time, and its refunds), for an order's page."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel

from unified_seller_view import domain, order_history, queries
from unified_seller_view.api import _account, _require_any, _scope, read_view
from unified_shared.auth import Principal, current_principal
from unified_shared.problems import Problem

router = APIRouter(prefix="/v1/accounts/{account_id}", tags=["unified view"])


class Amount(BaseModel):
    currency_code: str
    amount: str


class Refund(BaseModel):
    currency_code: str
    amount: str
    refunded_at: str


class HistoryEntry(BaseModel):
    """One step: ``placed`` (status = the order's first known status), ``status_changed`` (from_status ->
    status) or ``refunded`` (refund = its amount; the status is unchanged)."""

    kind: Literal["placed", "status_changed", "refunded"]
    at: str
    from_status: str | None = None
    status: str | None = None
    refund: Amount | None = None


class OrderDetail(BaseModel):
    amazon_order_id: str
    marketplace_id: str
    marketplace: str
    region: str
    purchase_date: str
    last_update_date: str
    order_status: str
    fulfillment_channel: str
    order_total: Amount
    number_of_items: int
    conversion: Literal["provisional", "final", "none"]
    number_of_items_shipped: int
    number_of_items_unshipped: int
    refunds: list[Refund]
    status_history: list[HistoryEntry]


OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern="^[0-9A-Za-z-]+$", description="AmazonOrderId")]


@router.get("/orders/{amazon_order_id}", response_model=OrderDetail)
async def get_order(
    request: Request,
    account_id: UUID,
    amazon_order_id: OrderId,
    principal: Annotated[Principal, Depends(current_principal)],
) -> OrderDetail:
    _account(principal, account_id)
    _require_any(principal, "orders")
    scope = _scope(principal, None)
    async with read_view(request) as (conn, _gen):
        page = await queries.orders(
            conn,
            domain.OrdersQuery(account_id, marketplaces=scope, order_ids=[amazon_order_id]),
            next_token=None,
            max_results=1,
        )
        if not page["orders"]:
            raise Problem(404, "Order not found", "no such order in your marketplaces")
        steps = await order_history.history(conn, account_id, amazon_order_id)
    return OrderDetail.model_validate({**page["orders"][0], "status_history": steps})
