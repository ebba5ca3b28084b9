"""HTTP API of the regions service: catalog, participations and the SP-API-shaped read (FX rates: fx_api)."""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from unified_regions import domain
from unified_regions.domain import Action
from unified_regions.handlers import CommandResult, RegionsHandlers
from unified_regions.settings import Settings
from unified_shared import catalog
from unified_shared.auth import Principal, current_principal, sp_api_principal
from unified_shared.bounds import InstantAssumeUtc, TextStr
from unified_shared.errors import Invalid, NotFound

router = APIRouter()

PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def _handlers(request: Request) -> RegionsHandlers:
    h: RegionsHandlers = request.app.state.handlers
    return h


HandlersDep = Annotated[RegionsHandlers, Depends(_handlers)]


# -- catalog ----------------------------------------------------------------------------------------
class MarketplaceOut(BaseModel):
    """A catalog marketplace on the wire: the catalog's fields, its region by name."""

    marketplace_id: str
    code: str
    name: str
    country_code: str
    currency: str
    region: str
    domain: str
    language: str


def _marketplace_out(m: catalog.Marketplace) -> MarketplaceOut:
    return MarketplaceOut.model_validate(m, from_attributes=True)


class MarketplacesOut(BaseModel):
    marketplaces: list[MarketplaceOut]


@router.get("/v1/marketplaces", tags=["catalog"])
async def list_marketplaces() -> MarketplacesOut:
    """Reference data (DESIGN section 3): public, the same for everyone."""
    return MarketplacesOut(marketplaces=[_marketplace_out(m) for m in catalog.all_marketplaces()])


@router.get("/v1/marketplaces/{ref}", tags=["catalog"])
async def get_marketplace(ref: MarketplaceRefPath) -> MarketplaceOut:
    """By SP-API ID, store code or ISO country (``UK`` and ``GB`` both find the UK store)."""
    try:
        return _marketplace_out(catalog.resolve(ref))
    except catalog.UnknownMarketplace as exc:
        raise NotFound(None, str(exc)) from None


# -- participations ---------------------------------------------------------------------------------
MarketplaceRef = Annotated[str, Field(min_length=1, max_length=32, pattern="^[A-Za-z0-9]+$")]
MarketplaceRefPath = Annotated[str, Path(min_length=1, max_length=32, pattern="^[A-Za-z0-9]+$")]
ActionPath = Annotated[str, Path(min_length=1, max_length=40, pattern="^[a-z-]+$")]


class OpenIn(BaseModel):
    marketplace: MarketplaceRef = Field(description="SP-API marketplace ID, store code (DE) or ISO country (GB/UK)")
    at: InstantAssumeUtc | None = Field(None, description="effective time (ISO 8601); default now; naive = UTC")


class ActionIn(BaseModel):
    at: InstantAssumeUtc | None = Field(None, description="effective time (ISO 8601); default now; naive = UTC")
    reason: TextStr | None = Field(None, max_length=500)


class ParticipationOut(BaseModel):
    account_id: UUID
    marketplace_id: str
    marketplace: str = Field(description="store code, e.g. DE")
    country_code: str
    currency: str
    state: str = Field(description="open | suspended | closed")
    is_participating: bool
    subscription_active: bool
    plan: str | None
    listings_active: bool
    suspension_reason: str | None
    last_changed_at: dt.datetime
    version: int
    event: str | None = Field(None, description="the event this command recorded")


class ParticipationsOut(BaseModel):
    account_id: UUID
    participations: list[ParticipationOut]


def _participation_out(
    account_id: UUID, marketplace_id: str, state: domain.Participation, version: int, event: str | None = None
) -> ParticipationOut:
    m = catalog.by_id(marketplace_id)
    assert state.last_at is not None
    return ParticipationOut(
        account_id=account_id,
        marketplace_id=marketplace_id,
        marketplace=m.code,
        country_code=m.country_code,
        currency=m.currency,
        state=str(state.status),
        is_participating=state.status in (domain.Status.OPEN, domain.Status.SUSPENDED),
        subscription_active=state.subscribed,
        plan="Professional" if state.subscribed else None,
        listings_active=state.listings_active,
        suspension_reason=state.suspension_reason,
        last_changed_at=state.last_at,
        version=version,
        event=event,
    )


def _is_operator(request: Request) -> bool:
    """The caller presents the operator credential (X-Operator-Token), which only the operator holds."""
    settings: Settings = request.app.state.settings
    token = request.headers.get("x-operator-token")
    return bool(
        settings.operator_token
        and token is not None
        and hmac.compare_digest(token.encode(), settings.operator_token.encode())
    )


def _out(account_id: UUID, result: CommandResult) -> ParticipationOut:
    return _participation_out(account_id, result.marketplace_id, result.state, result.version, result.event_type)


@router.post("/v1/accounts/{account_id}/participations", status_code=201, tags=["participations"])
async def open_participation(
    account_id: UUID, body: OpenIn, request: Request, principal: PrincipalDep, h: HandlersDep
) -> ParticipationOut:
    """Open (or re-open after closing) the account's participation in a marketplace."""
    principal.require_account(account_id)
    try:
        marketplace = catalog.resolve(body.marketplace)
    except catalog.UnknownMarketplace as exc:
        raise Invalid("marketplace", str(exc), title="Unknown marketplace") from None
    operator = _is_operator(request)
    result = await h.change(
        principal, account_id, marketplace.marketplace_id, Action.OPEN, at=body.at, reason=None, operator=operator
    )
    return _out(account_id, result)


@router.post("/v1/accounts/{account_id}/participations/{marketplace}/{action}", tags=["participations"])
async def participation_action(
    account_id: UUID,
    marketplace: MarketplaceRefPath,
    action: ActionPath,
    *,
    request: Request,
    principal: PrincipalDep,
    h: HandlersDep,
    body: ActionIn | None = None,
) -> ParticipationOut:
    """suspend, reinstate, close, start-subscription, end-subscription, activate-listings, deactivate-listings."""
    principal.require_account(account_id)
    try:
        command = Action(action)
    except ValueError:
        command = None
    if command is None or command is Action.OPEN:
        allowed = ", ".join(a.value for a in Action if a is not Action.OPEN)
        raise NotFound(None, f"no action {action!r}; one of: {allowed}")
    try:
        marketplace_id = catalog.resolve(marketplace).marketplace_id
    except catalog.UnknownMarketplace as exc:
        raise NotFound(None, str(exc)) from None
    body = body or ActionIn(at=None, reason=None)
    result = await h.change(
        principal, account_id, marketplace_id, command, at=body.at, reason=body.reason, operator=_is_operator(request)
    )
    return _out(account_id, result)


@router.get("/v1/accounts/{account_id}/participations", tags=["participations"])
async def list_account_participations(account_id: UUID, principal: PrincipalDep, h: HandlersDep) -> ParticipationsOut:
    """Every member may read; only the marketplaces of the caller's scope are shown."""
    rows = await h.participations(principal, account_id)
    return ParticipationsOut(
        account_id=account_id,
        participations=[_participation_out(account_id, r.marketplace_id, r.state, r.version) for r in rows],
    )


# -- SP-API Sellers: getMarketplaceParticipations ---------------------------------------------------
class SpMarketplace(BaseModel):
    id: str
    name: str
    countryCode: str
    defaultCurrencyCode: str
    defaultLanguageCode: str
    domainName: str


class SpParticipation(BaseModel):
    isParticipating: bool
    hasSuspendedListings: bool


class SpMarketplaceParticipation(BaseModel):
    marketplace: SpMarketplace
    participation: SpParticipation
    storeName: str


class SpGetMarketplaceParticipationsResponse(BaseModel):
    payload: list[SpMarketplaceParticipation]


@router.get("/sellers/v1/marketplaceParticipations", tags=["sp-api"])
async def get_marketplace_participations(
    principal: Annotated[Principal, Depends(sp_api_principal)], h: HandlersDep
) -> SpGetMarketplaceParticipationsResponse:
    """Amazon's Sellers API ``getMarketplaceParticipations`` for the signed-in account."""
    account, rows = await h.own_participations(principal)
    payload = []
    for r in rows:
        m = catalog.by_id(r.marketplace_id)
        assert account is not None
        payload.append(
            SpMarketplaceParticipation(
                marketplace=SpMarketplace(
                    id=m.marketplace_id,
                    name=m.name,
                    countryCode=m.country_code,
                    defaultCurrencyCode=m.currency,
                    defaultLanguageCode=m.language,
                    domainName=m.domain,
                ),
                participation=SpParticipation(**domain.sp_api_participation(r.state)),
                storeName=account.legal_name,
            )
        )
    return SpGetMarketplaceParticipationsResponse(payload=payload)
