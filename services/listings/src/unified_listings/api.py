"""HTTP API: own offers, international links, offers and their price history. Every amount is a decimal
string in the marketplace's currency; a bad field is a 422 problem naming it."""

from __future__ import annotations

import re
from dataclasses import asdict
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from unified_listings.handlers import LinkInput, Listings, OfferInput
from unified_listings.pricing import ENDINGS, InvalidRule, Rule, check_rule
from unified_listings.results import Link, Offer
from unified_shared.auth import Principal, current_principal
from unified_shared.catalog import UnknownMarketplace, by_id, resolve
from unified_shared.contracts.listings import TargetRule
from unified_shared.errors import Invalid
from unified_shared.money import minor_units

router = APIRouter(prefix="/listings/v1", tags=["listings"])
PrincipalDep = Annotated[Principal, Depends(current_principal)]
SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,39}$")
AMOUNT_RE = re.compile(r"^-?\d{1,12}(\.\d{1,4})?$")
MAX_TARGETS = 25
MAX_SKUS = 1000


def _listings(request: Request) -> Listings:
    listings: Listings = request.app.state.handlers
    return listings


def marketplace_of(ref: Any, field: str) -> str:
    if not isinstance(ref, str) or not ref:
        raise Invalid(field, f"{field} is required")
    try:
        return resolve(ref).marketplace_id
    except UnknownMarketplace:
        raise Invalid(field, f"{field} {ref!r} is not a known marketplace") from None


def sku_of(value: Any, field: str = "sku") -> str:
    if not isinstance(value, str) or not SKU_RE.match(value):
        raise Invalid(field, f"{field} must be 1-40 letters, digits or . _ - / (starting with a letter or digit)")
    return value


def amount_of(value: Any, field: str, currency: str, *, signed: bool = False) -> Decimal:
    if not isinstance(value, str) or not AMOUNT_RE.match(value) or (not signed and value.startswith("-")):
        raise Invalid(field, f'{field} must be a decimal string such as "12.99", got {value!r}')
    amount = Decimal(value)
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > minor_units(currency):
        raise Invalid(field, f"{field} {value} has more decimals than {currency} allows ({minor_units(currency)})")
    return amount


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(field, f"{field} must be a JSON object")
    return value


@router.put("/offers/{marketplace}/{sku}", summary="Create or change the seller's own offer in one marketplace")
async def put_offer(
    marketplace: str,
    sku: str,
    principal: PrincipalDep,
    request: Request,
    payload: Any = Body(..., examples=[{"price": "24.99", "quantity": 40, "status": "Active"}]),
) -> dict[str, Any]:
    marketplace_id = marketplace_of(marketplace, "marketplace")
    sku = sku_of(sku)
    body = _object(payload, "body")
    currency = resolve(marketplace_id).currency
    price = amount_of(body.get("price"), "price", currency)
    if price <= 0:
        raise Invalid("price", "price must be greater than zero")
    quantity = body.get("quantity", 0)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 <= quantity <= 1_000_000:
        raise Invalid("quantity", "quantity must be an integer from 0 to 1000000")
    status = body.get("status", "Active")
    if status not in ("Active", "Inactive"):
        raise Invalid("status", "status must be Active or Inactive")
    offer = OfferInput(sku, marketplace_id, price, quantity, status)
    return asdict(await _listings(request).upsert_offer(principal, offer))


def target_of(raw: Any, n: int) -> TargetRule:
    field = f"targets[{n}]"
    body = _object(raw, field)
    marketplace_id = marketplace_of(body.get("marketplace"), f"{field}.marketplace")
    currency = resolve(marketplace_id).currency
    ending = body.get("ending", "none")
    if ending not in ENDINGS:
        raise Invalid(f"{field}.ending", f"ending must be one of {', '.join(ENDINGS)}")
    raw_percent = body.get("percent", "0")
    if not isinstance(raw_percent, str) or not AMOUNT_RE.match(raw_percent):
        raise Invalid(f"{field}.percent", f'percent must be a decimal string such as "12.5", got {raw_percent!r}')
    percent = Decimal(raw_percent)
    fixed = amount_of(body.get("fixed", "0"), f"{field}.fixed", currency, signed=True)
    floor = amount_of(body.get("floor"), f"{field}.floor", currency)
    ceiling = amount_of(body["ceiling"], f"{field}.ceiling", currency) if body.get("ceiling") is not None else None
    excluded = body.get("excluded_skus", [])
    if not isinstance(excluded, list) or len(excluded) > MAX_SKUS:
        raise Invalid(f"{field}.excluded_skus", f"excluded_skus must be a list of at most {MAX_SKUS} SKUs")
    excluded = [sku_of(s, f"{field}.excluded_skus") for s in excluded]
    manual_raw = _object(body.get("manual_prices", {}), f"{field}.manual_prices")
    if len(manual_raw) > MAX_SKUS:
        raise Invalid(f"{field}.manual_prices", f"at most {MAX_SKUS} manual prices")
    manual = {
        sku_of(s, f"{field}.manual_prices"): amount_of(p, f"{field}.manual_prices.{s}", currency)
        for s, p in manual_raw.items()
    }
    rule = Rule(currency, percent, fixed, ending, floor, ceiling)
    try:
        check_rule(rule)
    except InvalidRule as exc:
        raise Invalid(f"{field}.{exc.field}", exc.detail) from None
    if any(p <= 0 for p in manual.values()):
        raise Invalid(f"{field}.manual_prices", "manual prices must be greater than zero")
    # The checked rule's fields are the target rule's pricing fields.
    return TargetRule(
        marketplace_id=marketplace_id,
        excluded_skus=sorted(set(excluded)),
        manual_prices=manual,
        **asdict(rule),
    )


@router.put("/links/{source}", summary="Link a source marketplace's offers (one SKU or all) to target marketplaces")
async def put_link(
    source: str,
    principal: PrincipalDep,
    request: Request,
    payload: Any = Body(
        ...,
        examples=[
            {
                "sku": "*",
                "targets": [{"marketplace": "DE", "percent": "10", "fixed": "0", "ending": ".99", "floor": "9.99"}],
            }
        ],
    ),
) -> dict[str, Any]:
    source_id = marketplace_of(source, "source")
    body = _object(payload, "body")
    sku = body.get("sku", "*")
    sku = "*" if sku == "*" else sku_of(sku)
    raw_targets = body.get("targets")
    if not isinstance(raw_targets, list) or len(raw_targets) > MAX_TARGETS:
        raise Invalid("targets", f"targets must be a list of at most {MAX_TARGETS} rules")
    targets = [target_of(raw, n) for n, raw in enumerate(raw_targets)]
    seen: set[str] = set()
    for n, target in enumerate(targets):
        if target.marketplace_id == source_id:
            raise Invalid(f"targets[{n}].marketplace", "a target cannot be the source marketplace")
        if target.marketplace_id in seen:
            raise Invalid(f"targets[{n}].marketplace", "each target marketplace once")
        seen.add(target.marketplace_id)
    return asdict(await _listings(request).set_link(principal, LinkInput(source_id, sku, targets)))


@router.get("/links", summary="The account's international links")
async def get_links(principal: PrincipalDep, request: Request) -> dict[str, Any]:
    return {"links": [link_body(link) for link in await _listings(request).links(principal)]}


@router.get("/offers", summary="Offers, own and linked, by marketplace and SKU")
async def get_offers(
    principal: PrincipalDep,
    request: Request,
    marketplace: list[str] | None = Query(None),
    sku: str | None = Query(None),
) -> dict[str, Any]:
    marketplace_ids = [marketplace_of(m, "marketplace") for m in marketplace] if marketplace else None
    offers = await _listings(request).offers(principal, marketplace_ids, sku_of(sku) if sku else None)
    return {"offers": [offer_body(o) for o in offers]}


@router.get("/offers/{marketplace}/{sku}/history", summary="An offer's price history: its event stream")
async def get_history(marketplace: str, sku: str, principal: PrincipalDep, request: Request) -> dict[str, Any]:
    marketplace_id = marketplace_of(marketplace, "marketplace")
    events = await _listings(request).history(principal, marketplace_id, sku_of(sku))
    return {"events": [{"type": e.event_type, "version": e.version, **e.payload} for e in events]}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def offer_body(o: Offer) -> dict[str, Any]:
    return {
        "sku": o.sku,
        "marketplace_id": o.marketplace_id,
        "marketplace": by_id(o.marketplace_id).code,
        "kind": o.kind,
        "currency": o.currency,
        "price": _text(o.price),
        "quantity": o.quantity,
        "status": o.status,
        "source_marketplace_id": o.source_marketplace_id,
        "source_price": _text(o.source_price),
        "fx_rate": _text(o.fx_rate),
        "fx_rate_date": o.fx_rate_date.isoformat() if o.fx_rate_date else None,
        "clamped": o.clamped,
        "stop_reason": o.stop_reason,
        "rule": o.rule,
        "version": o.version,
    }


def link_body(link: Link) -> dict[str, Any]:
    return {
        "source_marketplace_id": link.source_marketplace_id,
        "sku": link.sku,
        "targets": [t.model_dump(mode="json") for t in link.targets],
        "version": link.version,
    }
