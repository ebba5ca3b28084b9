"""HTTP API of the regions service: catalog, participations, the SP-API-shaped read, FX rates."""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, Field
from starlette.datastructures import UploadFile

from unified_regions import domain, ecb, handlers, store
from unified_regions.domain import Action
from unified_regions.settings import Settings
from unified_shared import catalog
from unified_shared.auth import Principal, current_principal, sp_api_principal
from unified_shared.bounds import InstantAssumeUtc, LineStr, QueryDate, TextStr, check_line, check_query_date
from unified_shared.problems import Problem
from unified_shared.runtime import ServiceRuntime

router = APIRouter()

CHANGE_ROLES = ("owner", "admin")
PrincipalDep = Annotated[Principal, Depends(current_principal)]


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


# -- catalog ----------------------------------------------------------------------------------------
class MarketplaceOut(BaseModel):
    marketplace_id: str
    code: str
    name: str
    country_code: str
    currency: str
    region: str
    domain: str
    language: str


def _marketplace_out(m: catalog.Marketplace) -> MarketplaceOut:
    return MarketplaceOut(
        marketplace_id=m.marketplace_id,
        code=m.code,
        name=m.name,
        country_code=m.country_code,
        currency=m.currency,
        region=str(m.region),
        domain=m.domain,
        language=m.language,
    )


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
        raise Problem(404, "Not found", str(exc)) from None


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


def _effective(request: Request, at: dt.datetime | None) -> dt.datetime:
    """The change's effective time: now by default; a past time within the grace window; an older one only
    for the operator (history brought over), since billing may have invoiced that time already."""
    now = dt.datetime.now(dt.UTC)
    if at is None:
        return now
    at = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    settings: Settings = request.app.state.settings
    if at > now + dt.timedelta(seconds=settings.future_skew_s):
        raise Problem(422, "Effective time in the future", f"at {at.isoformat()} is in the future", field="at")
    if at < now - dt.timedelta(seconds=settings.backdate_grace_s):
        token = request.headers.get("x-operator-token")
        if (
            not settings.operator_token
            or token is None
            or not hmac.compare_digest(token.encode(), settings.operator_token.encode())
        ):
            raise Problem(
                403,
                "Backdating needs the operator",
                f"an effective time more than {settings.backdate_grace_s // 3600} h in the past needs the operator "
                "credential (X-Operator-Token)",
                field="at",
            )
    return at


def _authorize_change(principal: Principal, account_id: UUID, marketplace_id: str) -> None:
    principal.require_account(account_id)
    principal.require_role(*CHANGE_ROLES)
    principal.require_marketplace(marketplace_id)


async def _run(
    request: Request,
    account_id: UUID,
    marketplace_id: str,
    action: Action,
    *,
    at: dt.datetime | None,
    reason: str | None,
) -> ParticipationOut:
    runtime = _runtime(request)
    result = await handlers.execute(
        runtime.pool,
        account_id,
        marketplace_id,
        action,
        at=_effective(request, at),
        reason=reason,
        notify=runtime.notify_relay,
    )
    return _participation_out(account_id, result.marketplace_id, result.state, result.version, result.event_type)


@router.post("/v1/accounts/{account_id}/participations", status_code=201, tags=["participations"])
async def open_participation(
    account_id: UUID, body: OpenIn, request: Request, principal: PrincipalDep
) -> ParticipationOut:
    """Open (or re-open after closing) the account's participation in a marketplace."""
    principal.require_account(account_id)
    try:
        marketplace = catalog.resolve(body.marketplace)
    except catalog.UnknownMarketplace as exc:
        raise Problem(422, "Unknown marketplace", str(exc), field="marketplace") from None
    _authorize_change(principal, account_id, marketplace.marketplace_id)
    return await _run(request, account_id, marketplace.marketplace_id, Action.OPEN, at=body.at, reason=None)


@router.post("/v1/accounts/{account_id}/participations/{marketplace}/{action}", tags=["participations"])
async def participation_action(
    account_id: UUID,
    marketplace: MarketplaceRefPath,
    action: ActionPath,
    *,
    request: Request,
    principal: PrincipalDep,
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
        raise Problem(404, "Not found", f"no action {action!r}; one of: {allowed}")
    try:
        marketplace_id = catalog.resolve(marketplace).marketplace_id
    except catalog.UnknownMarketplace as exc:
        raise Problem(404, "Not found", str(exc)) from None
    _authorize_change(principal, account_id, marketplace_id)
    body = body or ActionIn(at=None, reason=None)
    return await _run(request, account_id, marketplace_id, command, at=body.at, reason=body.reason)


@router.get("/v1/accounts/{account_id}/participations", tags=["participations"])
async def list_account_participations(account_id: UUID, request: Request, principal: PrincipalDep) -> ParticipationsOut:
    """Every member may read; only the marketplaces of the caller's scope are shown."""
    principal.require_account(account_id)
    async with _runtime(request).pool.acquire() as conn:
        if await store.get_account(conn, account_id) is None:
            raise Problem(404, "Not found", "no such account (not registered, or not known to regions yet)")
        rows = await store.list_participations(conn, account_id)
    return ParticipationsOut(
        account_id=account_id,
        participations=[
            _participation_out(account_id, r.marketplace_id, r.state, r.version)
            for r in rows
            if principal.covers(r.marketplace_id)
        ],
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
    request: Request, principal: Annotated[Principal, Depends(sp_api_principal)]
) -> SpGetMarketplaceParticipationsResponse:
    """Amazon's Sellers API ``getMarketplaceParticipations`` for the signed-in account."""
    async with _runtime(request).pool.acquire() as conn:
        account = await store.get_account(conn, principal.account_id)
        rows = await store.list_participations(conn, principal.account_id) if account else []
    payload = []
    for r in rows:
        if not principal.covers(r.marketplace_id):
            continue
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


# -- FX rates ---------------------------------------------------------------------------------------
class FxDayOut(BaseModel):
    date: dt.date
    requested_date: dt.date
    base: str = "EUR"
    rates: dict[str, str] = Field(description="units of each currency per 1 EUR, decimal strings")
    derived: dict[str, str]
    source: str
    revision: int


class FxSummaryOut(BaseModel):
    days: int
    first_date: dt.date | None
    last_date: dt.date | None


@router.get("/v1/fx-rates", tags=["fx"])
async def fx_rates_summary(request: Request, principal: PrincipalDep) -> FxSummaryOut:
    async with _runtime(request).pool.acquire() as conn:
        return FxSummaryOut(**await store.fx_summary(conn))


@router.get("/v1/fx-rates/{date}", tags=["fx"])
async def fx_rates_of_day(
    date: Annotated[dt.date, Path(description="YYYY-MM-DD, 1970 .. 2100"), AfterValidator(check_query_date)],
    request: Request,
    principal: PrincipalDep,
    on_or_before: Annotated[bool, Query(description="else the last published day before it")] = False,
) -> FxDayOut:
    """The rates ECB published for ``date``. A currency without a rate that day is absent, never zero."""
    async with _runtime(request).pool.acquire() as conn:
        day = await store.get_day(conn, date, on_or_before=on_or_before)
    if day is None:
        hint = "" if on_or_before else " (ECB publishes none at weekends and holidays; try ?on_or_before=true)"
        raise Problem(404, "Not found", f"no FX rates for {date}{hint}")
    return FxDayOut(
        date=day.date,
        requested_date=date,
        rates={c: format(r, "f") for c, r in sorted(day.rates.items())},
        derived=day.derived,
        source=day.source,
        revision=day.revision,
    )


def _require_operator(settings: Settings, token: str | None) -> None:
    if not settings.operator_token:
        raise Problem(503, "FX import disabled", "OPERATOR_TOKEN is not configured on this service")
    if token is None or not hmac.compare_digest(token.encode(), settings.operator_token.encode()):
        raise Problem(401, "Unauthorized", "a valid X-Operator-Token header is required")


async def _upload(request: Request, limit: int) -> tuple[bytes, str]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "File too large", f"at most {limit} bytes")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(422, "Invalid request", "multipart upload needs a 'file' field", field="file")
        data = await upload.read()
        name = upload.filename or "upload"
        try:
            check_line(name)
        except ValueError as exc:
            raise Problem(422, "Invalid request", f"file name {exc}", field="file") from None
    else:
        data = await request.body()
        name = request.query_params.get("filename") or "upload"
    if len(data) > limit:
        raise Problem(413, "File too large", f"at most {limit} bytes")
    if not data:
        raise Problem(422, "Invalid request", "the request carries no file")
    return data, name


class FxImportOut(BaseModel):
    days_in_file: int
    days_considered: int
    published: int
    corrected: int
    unchanged: int
    first_date: dt.date | None
    last_date: dt.date | None
    corrected_dates: list[dt.date]


@router.post("/v1/admin/fx-rates/import", tags=["fx"])
async def import_fx_rates(
    request: Request,
    response: Response,
    x_operator_token: Annotated[str | None, Header()] = None,
    since: Annotated[QueryDate | None, Query(description="import only days on or after this date")] = None,
    filename: Annotated[LineStr | None, Query(max_length=200, description="names a raw-body upload")] = None,
) -> FxImportOut:
    """Import an ECB file (eurofxref-hist CSV/ZIP or eurofxref-daily XML): multipart field ``file`` or the
    raw body (``?filename=`` names it). All or nothing: a malformed file is rejected with its line."""
    settings: Settings = request.app.state.settings
    _require_operator(settings, x_operator_token)
    data, name = await _upload(request, settings.fx_max_upload_bytes)
    runtime = _runtime(request)
    try:
        report = await handlers.import_fx(
            runtime.pool, data, filename=name, origin=f"uploaded {name}", since=since, notify=runtime.notify_relay
        )
    except ecb.FxFileError as exc:
        raise Problem(422, "Malformed rates file", str(exc), line=exc.line, part=exc.part, reason=exc.reason) from None
    result: dict[str, Any] = report.as_dict()
    return FxImportOut(**result)
