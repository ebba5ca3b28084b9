"""Marketplaces (participations, subscriptions, listings; open one, start or end a plan), the team ("Add
people": invite, revoke, change a scope, remove) and billing (invoices, cap savings, preview, CSV)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from unified_shared import catalog
from unified_web import domain
from unified_web.upstream import NotAllowed, UpstreamError
from unified_web.web import User, check_csrf, deps, form_data, redirect, render, require_page

router = APIRouter()

ACTIONS = {
    "start-subscription": "Plan started.",
    "end-subscription": "Plan ended.",
    "activate-listings": "Listings activated.",
    "deactivate-listings": "Listings deactivated.",
    "open": "Marketplace opened.",
}


# -- marketplaces -----------------------------------------------------------------------------------------
async def _marketplaces_page(request: Request, user: User, *, error: str | None = None, status: int = 200) -> Response:
    participations, subs = await asyncio.gather(user.platform.participations(), _subscriptions(user))
    by_id = {p["marketplace_id"]: p for p in participations}
    scope = domain.scope_codes(user.principal)
    closed = [
        m
        for m in catalog.all_marketplaces()
        if m.marketplace_id not in by_id or by_id[m.marketplace_id]["state"] == "closed"
    ]
    openable = [m for m in closed if scope is None or m.code in scope]
    notice = ACTIONS.get(request.query_params.get("done", ""))
    context = {
        "participations": participations,
        "subs": subs,
        "openable": openable,
        "may_change": domain.may_change_marketplaces(user.principal),
        "notice": notice,
        "error": error,
    }
    return render(request, "marketplaces.html", context, user=user, status=status)


async def _subscriptions(user: User) -> dict[str, dict[str, Any]]:
    data = await user.platform.subscriptions()
    return {m["marketplace_id"]: m for m in data.get("marketplaces", [])}


@router.get("/marketplaces")
async def marketplaces(request: Request) -> Response:
    user = await require_page(request, "/marketplaces")
    return await _marketplaces_page(request, user)


@router.post("/marketplaces/open")
async def open_marketplace(request: Request) -> Response:
    form = await form_data(request)
    return await _marketplace_change(request, str(form.get("marketplace", "")), "open", form)


@router.post("/marketplaces/{marketplace}/{action}")
async def marketplace_action(request: Request, marketplace: str, action: str) -> Response:
    return await _marketplace_change(request, marketplace, action, await form_data(request))


async def _marketplace_change(request: Request, marketplace: str, action: str, form: dict[str, Any]) -> Response:
    user = await require_page(request, "/marketplaces")
    check_csrf(user, form, request)
    if action not in ACTIONS:
        return await _marketplaces_page(request, user, error="unknown action", status=404)
    try:
        code = catalog.resolve(marketplace).code
    except catalog.UnknownMarketplace:
        return await _marketplaces_page(request, user, error="unknown marketplace", status=422)
    try:
        if action == "open":
            await user.platform.open_marketplace(code)
        else:
            await user.platform.participation_action(code, action)
    except UpstreamError as exc:
        if isinstance(exc, NotAllowed) or exc.status in (409, 422):
            return await _marketplaces_page(request, user, error=f"{code}: {exc.detail}", status=exc.status)
        raise
    return redirect(f"/marketplaces?done={action}", request)


# -- team -------------------------------------------------------------------------------------------------
async def _team_page(
    request: Request,
    user: User,
    *,
    error: domain.FormError | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    data = await user.platform.members()
    scope = domain.scope_codes(user.principal)
    context = {
        "members": [{**m, "codes": _codes(m.get("marketplaces", []))} for m in data.get("members", [])],
        "invitations": data.get("invitations", []),
        "codes": [m.code for m in catalog.all_marketplaces() if scope is None or m.code in scope],
        "grantable": domain.GRANTABLE,
        "may_invite_admin": user.principal.role == "owner",
        "error": error,
        "form": form or {},
        "notice": _TEAM_NOTICES.get(request.query_params.get("done", "")),
    }
    return render(request, "team.html", context, user=user, status=status)


_TEAM_NOTICES = {
    "invited": "Invitation sent.",
    "revoked": "Invitation revoked.",
    "changed": "Member changed.",
    "removed": "Member removed.",
}


def _codes(scope: Any) -> str | list[str]:
    return "*" if scope == "*" else sorted(_code_of(str(m)) for m in scope)


def _code_of(marketplace_id: str) -> str:
    try:
        return catalog.resolve(marketplace_id).code
    except catalog.UnknownMarketplace:
        return marketplace_id


@router.get("/team")
async def team(request: Request) -> Response:
    user = await require_page(request, "/team")
    return await _team_page(request, user)


async def _team_change(request: Request, done: str, call: Any, *, build: Any = None) -> Response:
    """Run one team change; a refusal or bad input shows the page again with the reason next to the form."""
    user = await require_page(request, "/team")
    form = await form_data(request)
    check_csrf(user, form, request)
    try:
        body = build(form) if build else None
        await call(user, body)
    except domain.FormError as exc:
        return await _team_page(request, user, error=exc, form=form, status=422)
    except UpstreamError as exc:
        if exc.status >= 500 and exc.status != 502:
            raise
        return await _team_page(
            request, user, error=domain.FormError(exc.field or "team", exc.detail), form=form, status=exc.status
        )
    return redirect(f"/team?done={done}", request)


@router.post("/team/invitations")
async def invite(request: Request) -> Response:
    return await _team_change(request, "invited", lambda u, b: u.platform.invite(b), build=domain.invitation)


@router.post("/team/invitations/{invitation_id}/revoke")
async def revoke(request: Request, invitation_id: str) -> Response:
    return await _team_change(request, "revoked", lambda u, _: u.platform.revoke_invitation(invitation_id))


@router.post("/team/members/{user_id}/scope")
async def change_scope(request: Request, user_id: str) -> Response:
    return await _team_change(request, "changed", lambda u, b: u.platform.change_member(user_id, b), build=domain.grant)


@router.post("/team/members/{user_id}/remove")
async def remove(request: Request, user_id: str) -> Response:
    return await _team_change(request, "removed", lambda u, _: u.platform.remove_member(user_id))


# -- billing ----------------------------------------------------------------------------------------------
def _billing_filters(request: Request) -> dict[str, str]:
    q = request.query_params
    params: dict[str, str] = {}
    period, currency = q.get("period", "").strip(), q.get("currency", "").strip().upper()
    if period:
        if len(period) != 7 or period[4] != "-" or not all(c in "0123456789" for c in period[:4] + period[5:]):
            raise domain.FormError("period", "a month like 2026-10")
        params["period"] = period
    if currency:
        if len(currency) != 3 or not currency.isalpha():
            raise domain.FormError("currency", "a currency code like EUR")
        params["currency"] = currency
    return params


@router.get("/billing")
async def billing(request: Request) -> Response:
    user = await require_page(request, "/billing")
    try:
        params = _billing_filters(request)
        error = None
    except domain.FormError as exc:
        params, error = {}, exc
    everything, shown, preview = await asyncio.gather(
        user.platform.invoices({}), user.platform.invoices(params), user.platform.preview()
    )
    year = deps(request).clock().year
    periods, currencies = domain.periods_and_currencies(everything)
    context = {
        "invoices": shown.get("invoices", []),
        "credit_notes": shown.get("credit_notes", []),
        "savings": domain.cap_savings(everything, year),
        "preview": preview,
        "periods": periods,
        "currencies": currencies,
        "selected": params,
        "error": error,
        "csv_query": "&".join(f"{k}={v}" for k, v in params.items()),
        "code_of": _code_of,
    }
    return render(request, "billing.html", context, user=user, status=422 if error else 200)


@router.get("/billing/invoices.csv")
async def billing_csv(request: Request) -> Response:
    user = await require_page(request, "/billing")
    try:
        params = _billing_filters(request)
    except domain.FormError:
        params = {}
    content = await user.platform.invoices_csv(params)
    name = "invoices" + "".join(f"-{v}" for v in params.values()) + ".csv"
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
