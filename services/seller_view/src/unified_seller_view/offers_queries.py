"""Offers per SKU across marketplaces, each price also in the reporting currency at the latest published
rates, flagged where a linked price is stale (made from an older rate day or source price) or was clamped;
a currency without a rate (EGP) is shown unconverted and marked unavailable, never guessed."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any
from uuid import UUID

import asyncpg

from unified_shared import catalog
from unified_shared.money import quantum

FX_BASE = "EUR"


def convert(amount: Decimal, currency: str, reporting: str, rates: dict[str, Decimal]) -> Decimal | None:
    """x / rate(C) x rate(R), rounded half-up to R's minor unit; None when a rate is missing."""
    if currency == reporting:
        return amount
    source = Decimal(1) if currency == FX_BASE else rates.get(currency)
    target = Decimal(1) if reporting == FX_BASE else rates.get(reporting)
    if source is None or target is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 40
        return (amount / source * target).quantize(quantum(reporting), rounding=ROUND_HALF_UP)


async def offers_by_sku(
    conn: asyncpg.Connection, account_id: UUID, *, marketplaces: list[str] | None, reporting_currency: str
) -> dict[str, Any]:
    if await conn.fetchval("SELECT to_regclass('offers')") is None:
        return {"reporting_currency": reporting_currency, "fx_rate_date": None, "skus": []}
    latest: dt.date | None = await conn.fetchval("SELECT max(date) FROM fx_days")
    rates: dict[str, Decimal] = {}
    if latest is not None:
        rows = await conn.fetch("SELECT currency, rate FROM fx_rates WHERE date = $1", latest)
        rates = {r["currency"]: r["rate"] for r in rows}
    rows = await conn.fetch(
        """SELECT o.*, s.price AS current_source_price
           FROM offers o
           LEFT JOIN offers s ON s.account_id = o.account_id AND s.marketplace_id = o.source_marketplace_id
                              AND s.sku = o.sku AND s.kind = 'own'
           WHERE o.account_id = $1 AND ($2::text[] IS NULL OR o.marketplace_id = ANY($2::text[]))
           ORDER BY o.sku, o.marketplace_id""",
        account_id,
        marketplaces,
    )
    skus: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        price: Decimal | None = r["price"]
        converted = convert(price, r["currency"], reporting_currency, rates) if price is not None else None
        linked = r["kind"] == "linked"
        stale_reasons = []
        if linked and r["status"] == "Active":
            if r["fx_rate_date"] is not None and latest is not None and r["fx_rate_date"] < latest:
                stale_reasons.append(
                    f"priced at the rates of {r['fx_rate_date'].isoformat()}, not {latest.isoformat()}"
                )
            if r["current_source_price"] is not None and r["current_source_price"] != r["source_price"]:
                stale_reasons.append("the source price changed since")
        skus.setdefault(r["sku"], []).append(
            {
                "marketplace_id": r["marketplace_id"],
                "marketplace": catalog.by_id(r["marketplace_id"]).code,
                "kind": r["kind"],
                "status": r["status"],
                "price": {"currency_code": r["currency"], "amount": None if price is None else format(price, "f")},
                "converted": None if converted is None else format(converted, "f"),
                "conversion": "unavailable" if price is not None and converted is None else "ok",
                "stale": bool(stale_reasons),
                "stale_reasons": stale_reasons,
                "clamped": r["clamped"],
                "stop_reason": r["stop_reason"],
                "fx_rate_date": r["fx_rate_date"].isoformat() if r["fx_rate_date"] else None,
            }
        )
    return {
        "reporting_currency": reporting_currency,
        "fx_rate_date": latest.isoformat() if latest else None,
        "skus": [{"sku": sku, "marketplaces": offers} for sku, offers in skus.items()],
    }
