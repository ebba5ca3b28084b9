"""HTTP of accounts and teams (JSON, problem+json errors), and the invitation link's HTML page."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from unified_identity import domain, pages
from unified_identity.handlers import Identity
from unified_identity.problems import status_of
from unified_identity.results import Member, PendingInvitation
from unified_shared.auth import Principal, current_principal
from unified_shared.bounds import Instant, LineStr, check_line
from unified_shared.problems import Problem

router = APIRouter()


def source_address(request: Request) -> str:
    """Where a request comes from, for the throttles: the peer, as uvicorn resolved it (X-Forwarded-For only
    from the proxies FORWARDED_ALLOW_IPS trusts)."""
    return request.client.host if request.client else "unknown"


def _identity(request: Request) -> Identity:
    identity: Identity = request.app.state.handlers
    return identity


# Names and e-mail addresses end up in mail headers and HTML: one line, no control characters.
Email = Annotated[LineStr, Field(min_length=3, max_length=254, pattern="^[^@\\s]+@[^@\\s]+$")]
Password = Annotated[LineStr, Field(max_length=domain.PASSWORD_MAX_LENGTH)]
MarketplaceRef = Annotated[str, Field(min_length=1, max_length=32, pattern="^[A-Za-z0-9]+$")]
Role = Annotated[str, Field(max_length=32, json_schema_extra={"enum": list(domain.INVITABLE_ROLES)})]
Permission = Annotated[str, Field(max_length=32, json_schema_extra={"enum": list(domain.MEMBER_PERMISSIONS)})]
ScopeRef = Annotated[str, Field(min_length=1, max_length=32, pattern="^([*]|[A-Za-z0-9]+)$")]
Scope = Annotated[Literal["*"] | list[ScopeRef], Field(max_length=50)]


def _scope(value: str | tuple[str, ...]) -> str | list[str]:
    return value if isinstance(value, str) else list(value)


def member_body(m: Member) -> dict[str, Any]:
    return {
        "user_id": str(m.user_id),
        "email": m.email,
        "name": m.name,
        "email_verified": m.email_verified,
        "role": m.role,
        "permissions": list(m.permissions),
        "marketplaces": _scope(m.marketplaces),
        "joined_at": m.joined_at.isoformat(),
    }


def invitation_body(i: PendingInvitation) -> dict[str, Any]:
    return {
        "invitation_id": str(i.invitation_id),
        "email": i.email,
        "name": i.name,
        "role": i.role,
        "permissions": list(i.permissions),
        "marketplaces": _scope(i.marketplaces),
        "invited_by": str(i.invited_by),
        "created_at": i.created_at.isoformat(),
        "expires_at": i.expires_at.isoformat(),
    }


class RegisterAccount(BaseModel):
    legal_name: LineStr = Field(min_length=1, max_length=200)
    name: LineStr | None = Field(default=None, max_length=200, description="the owner's own name (member list)")
    home_marketplace: MarketplaceRef = Field(description='SP-API marketplace ID or code, e.g. "A1PA6795UKMFR9" or "DE"')
    email: Email
    password: Password
    at: Instant | None = Field(default=None, description="effective registration time (operator only; default now)")


class Registered(BaseModel):
    account_id: UUID
    user_id: UUID


class InvitationRequest(BaseModel):
    email: Email
    name: LineStr | None = Field(
        default=None, max_length=200, description="the invitee's name, shown in the member list"
    )
    role: Role = Field(description='"admin" or "member"')
    permissions: list[Permission] = Field(
        default_factory=list, max_length=10, description="any of orders, messages, reports"
    )
    marketplaces: Scope = Field(default="*", description='"*" or marketplace codes/IDs, e.g. ["DE", "FR"]')


class InvitationCreated(BaseModel):
    invitation_id: UUID
    expires_at: datetime


class AcceptInvitation(BaseModel):
    token: str = Field(min_length=1, max_length=200, pattern="^[A-Za-z0-9_-]+$")
    password: Password


class VerificationConfirm(BaseModel):
    token: str = Field(min_length=1, max_length=200, pattern="^[A-Za-z0-9_-]+$")


class MemberChange(BaseModel):
    role: Role | None = None
    permissions: list[Permission] | None = Field(None, max_length=10)
    marketplaces: Scope | None = None


@router.post("/v1/accounts", status_code=201, response_model=Registered, tags=["accounts"])
async def register_account(body: RegisterAccount, request: Request) -> Registered:
    expected = _identity(request).settings.operator_token
    given = request.headers.get("x-operator-token", "")
    operator = bool(expected) and hmac.compare_digest(given.encode(), str(expected).encode())
    if body.at is not None and not operator:
        raise Problem(403, "Forbidden", "only the platform operator (X-Operator-Token) may set 'at'")
    account_id, user_id = await _identity(request).register_account(
        **body.model_dump(exclude={"name"}), owner_name=body.name, address=None if operator else source_address(request)
    )
    return Registered(account_id=account_id, user_id=user_id)


@router.post("/v1/accounts/{account_id}/invitations", status_code=201, response_model=InvitationCreated, tags=["team"])
async def invite(
    account_id: UUID, body: InvitationRequest, request: Request, principal: Principal = Depends(current_principal)
) -> InvitationCreated:
    invitation_id, expires_at = await _identity(request).invite(principal, account_id, **body.model_dump())
    return InvitationCreated(invitation_id=invitation_id, expires_at=expires_at)


@router.delete("/v1/accounts/{account_id}/invitations/{invitation_id}", status_code=204, tags=["team"])
async def revoke_invitation(
    account_id: UUID, invitation_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    await _identity(request).revoke_invitation(principal, account_id, invitation_id)
    return Response(status_code=204)


@router.get("/v1/accounts/{account_id}/members", tags=["team"])
async def list_members(
    account_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> dict[str, Any]:
    team = await _identity(request).members(principal, account_id)
    return {
        "account_id": str(team.account_id),
        "members": [member_body(m) for m in team.members],
        "invitations": [invitation_body(i) for i in team.invitations],
    }


@router.patch("/v1/accounts/{account_id}/members/{user_id}", tags=["team"])
async def change_member(
    account_id: UUID,
    user_id: UUID,
    body: MemberChange,
    request: Request,
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    member = await _identity(request).change_member(
        principal, account_id, user_id, role=body.role, permissions=body.permissions, marketplaces=body.marketplaces
    )
    return member_body(member)


@router.delete("/v1/accounts/{account_id}/members/{user_id}", status_code=204, tags=["team"])
async def remove_member(
    account_id: UUID, user_id: UUID, request: Request, principal: Principal = Depends(current_principal)
) -> Response:
    await _identity(request).remove_member(principal, account_id, user_id)
    return Response(status_code=204)


@router.post("/v1/invitations/accept", status_code=201, response_model=Registered, tags=["team"])
async def accept_invitation(body: AcceptInvitation, request: Request) -> Registered:
    account_id, user_id = await _identity(request).accept_invitation(body.token, body.password)
    return Registered(account_id=account_id, user_id=user_id)


# -- the link in the invitation mail (a person with a browser) ------------------------------------------------
def _link_page(token: str, invalid: str, page: Callable[[str], HTMLResponse]) -> HTMLResponse:
    """The page a mailed link opens (its form posts the token back), or an error page titled ``invalid``."""
    if not token:
        return pages.error(invalid, "The link has no token.", status=400)
    return page(token)


@router.get("/invitations/accept", response_class=HTMLResponse, include_in_schema=False)
async def accept_page(token: str = "") -> HTMLResponse:
    return _link_page(token, "Invalid invitation link", pages.accept_invitation)


@router.post("/invitations/accept", response_class=HTMLResponse, include_in_schema=False)
async def accept_form(request: Request) -> HTMLResponse:
    form = await request.form()
    token, password = str(form.get("token", "")), str(form.get("password", ""))
    try:
        check_line(token[:200])
        check_line(password)
    except ValueError as exc:
        return pages.error("Invalid invitation link", f"The form {exc}.", status=422)
    try:
        await _identity(request).accept_invitation(token, password)
    except domain.Invalid as exc:
        return pages.accept_invitation(token, error=exc.detail, status=422)
    except domain.DomainError as exc:
        return pages.error("Cannot accept the invitation", exc.detail, status=status_of(exc))
    return pages.invitation_accepted()


# -- e-mail verification ----------------------------------------------------------------------------------------
@router.post("/v1/me/email-verification", status_code=202, tags=["accounts"])
async def send_email_verification(request: Request, principal: Principal = Depends(current_principal)) -> JSONResponse:
    """Mail a verification link to the caller's own address (200 without a mail if it is verified already)."""
    outcome = await _identity(request).send_email_verification(principal)
    body: dict[str, Any] = {"email": outcome.email, "email_verified": outcome.email_verified, "sent": outcome.sent}
    if outcome.expires_in is not None:
        body["expires_in"] = outcome.expires_in
    return JSONResponse(body, status_code=202 if outcome.sent else 200)


@router.post("/v1/email-verification/confirm", tags=["accounts"])
async def confirm_email(body: VerificationConfirm, request: Request) -> dict[str, Any]:
    """The link's token, for clients that open the link themselves."""
    address = await _identity(request).verify_email(body.token)
    return {"email": address, "email_verified": True}


@router.get("/email/verify", response_class=HTMLResponse, include_in_schema=False)
async def verify_page(token: str = "") -> HTMLResponse:
    return _link_page(token, "Invalid verification link", pages.verify_email)


@router.post("/email/verify", response_class=HTMLResponse, include_in_schema=False)
async def verify_form(request: Request) -> HTMLResponse:
    form = await request.form()
    try:
        address = await _identity(request).verify_email(str(form.get("token", "")))
    except domain.DomainError as exc:
        return pages.error("Cannot confirm the e-mail address", exc.detail, status=status_of(exc))
    return pages.email_verified(address)
