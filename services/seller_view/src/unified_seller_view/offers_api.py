"""GET /v1/accounts/{account_id}/offers: each SKU's price in every marketplace of the caller's scope."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from unified_seller_view import offers_queries
from unified_seller_view.api import _reporting_access, read_view
from unified_shared.auth import Principal, current_principal

router = APIRouter(prefix="/v1/accounts/{account_id}", tags=["unified view"])


@router.get("/offers")
async def get_offers(
    request: Request,
    *,
    account_id: UUID,
    principal: Annotated[Principal, Depends(current_principal)],
    currency: str = Query("USD", min_length=3, max_length=3, description="reporting currency (ISO 4217)"),
    marketplace: list[str] | None = Query(None, description="marketplace IDs or codes (repeat or comma-separate)"),
) -> dict[str, Any]:
    reporting, scope = _reporting_access(principal, account_id, currency, marketplace, "listings", "reports")
    async with read_view(request) as (conn, _gen):
        return await offers_queries.offers_by_sku(conn, account_id, marketplaces=scope, reporting_currency=reporting)
