"""International offers: every SKU's price in each marketplace of the user's scope, read from the unified view,
with what made it (the FX day, a clamp) or why a target is stopped."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from unified_web import domain
from unified_web.web import render, require_page

router = APIRouter()


@router.get("/offers")
async def offers(request: Request) -> Response:
    user = await require_page(request, "/offers")
    try:
        currency, error = domain.reporting_currency(request.query_params.get("currency")), None
    except domain.FormError as exc:
        currency, error = "USD", exc
    data = await user.platform.offers(currency)
    rows = [{"sku": s["sku"], **offer} for s in data.get("skus", []) for offer in s.get("marketplaces", [])]
    context = {
        "rows": rows,
        "currency": currency,
        "currencies": domain.REPORTING_CURRENCIES,
        "fx_rate_date": data.get("fx_rate_date"),
        "error": error,
    }
    return render(request, "offers.html", context, user=user, status=422 if error else 200)
