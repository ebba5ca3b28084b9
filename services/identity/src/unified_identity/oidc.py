"""HTTP of the OpenID Connect provider: discovery, JWKS, authorize (HTML sign-in), token, userinfo, revoke,
end-session. Errors of the OAuth endpoints follow RFC 6749 / OIDC; the rest are problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData, QueryParams

from unified_identity import domain, keys, pages
from unified_identity.api import source_address
from unified_identity.handlers import AuthorizeRequest, Identity, OAuthError, SignInFailed, SignInThrottled
from unified_shared.auth import Principal, current_principal
from unified_shared.bounds import check_line

router = APIRouter(tags=["openid-connect"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
SCOPES = ["openid", "profile", "email", "offline_access"]


def _identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


MAX_PARAMETER = 4096


def _single_values(items: FormData | QueryParams) -> dict[str, str]:
    """RFC 6749 3.1: a parameter sent twice is an invalid request."""
    values: dict[str, str] = {}
    for key, value in items.multi_items():
        if not isinstance(value, str):
            raise OAuthError("invalid_request", f"parameter {key} must be text")
        if key in values:
            raise OAuthError("invalid_request", f"parameter {key} is repeated")
        try:  # the shared bounds: one line, no NUL or control characters, a length limit
            check_line(key)
            check_line(value)
        except ValueError as exc:
            raise OAuthError("invalid_request", f"parameter {key[:40]!r} {exc}") from None
        if len(value) > MAX_PARAMETER:
            raise OAuthError("invalid_request", f"parameter {key[:40]!r} is longer than {MAX_PARAMETER} characters")
        values[key] = value
    return values


def _oauth_error_response(exc: OAuthError) -> JSONResponse:
    headers = dict(_NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="unified-seller"'
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description}, status_code=exc.status, headers=headers
    )


def _with_query(uri: str, params: Mapping[str, str | None]) -> str:
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> JSONResponse:
    issuer = _identity(request).settings.issuer
    return JSONResponse(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "revocation_endpoint": f"{issuer}/revoke",
            "end_session_endpoint": f"{issuer}/end-session",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login", "select_account"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [keys.ALG],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "scopes_supported": SCOPES,
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "sid",
                "email",
                "email_verified",
                "account_id",
                "role",
                "permissions",
                "marketplaces",
            ],
            "authorization_response_iss_parameter_supported": True,
        }
    )


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    identity = _identity(request)
    async with identity.pool.acquire() as conn:
        body = await keys.jwks(conn, now=datetime.now(UTC), grace=identity.key_grace)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})


async def _authorize_checked(identity: Identity, params: dict[str, str]) -> tuple[Any, Response | None, dict[str, str]]:
    """Validate an authorization request; returns (request, error response to send instead, params)."""
    try:
        client = await identity.check_client_redirect(params.get("client_id"), params.get("redirect_uri"))
    except OAuthError as exc:
        return None, pages.error("Cannot sign in", f"{exc.error}: {exc.description}", status=400), params
    try:
        auth_request = identity.check_authorize_params(params)
    except OAuthError as exc:
        return None, _error_redirect(identity, params["redirect_uri"], params.get("state"), exc), params
    return (client, auth_request), None, params


def _error_redirect(identity: Identity, redirect_uri: str, state: str | None, exc: OAuthError) -> RedirectResponse:
    target = _with_query(
        redirect_uri,
        {"error": exc.error, "error_description": exc.description, "state": state, "iss": identity.settings.issuer},
    )
    return RedirectResponse(target, status_code=302, headers=_NO_STORE)


def _code_redirect(identity: Identity, auth_request: AuthorizeRequest, code: str) -> RedirectResponse:
    target = _with_query(
        auth_request.redirect_uri, {"code": code, "state": auth_request.state, "iss": identity.settings.issuer}
    )
    return RedirectResponse(target, status_code=302, headers=_NO_STORE)


# -- cookies ------------------------------------------------------------------------------------------------------
# Both are HttpOnly, SameSite=Lax, Path=/, host-only; over https they are Secure and carry the __Host- prefix,
# so a sibling subdomain cannot plant or overwrite them.
SESSION_COOKIE = "unified_sso"  # names the browser session (single sign-on); the database keeps its hash
CSRF_COOKIE = "unified_signin_csrf"  # the browser half of the sign-in form's double-submit CSRF token


def cookie_name(identity: Identity, base: str) -> str:
    return f"__Host-{base}" if identity.settings.cookies_secure else base


def _set_cookie(response: Response, identity: Identity, base: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        cookie_name(identity, base),
        value,
        max_age=max_age,
        path="/",
        secure=identity.settings.cookies_secure,
        httponly=True,
        samesite="lax",
    )


def _clear_cookie(response: Response, identity: Identity, base: str) -> None:
    response.delete_cookie(
        cookie_name(identity, base), path="/", secure=identity.settings.cookies_secure, httponly=True, samesite="lax"
    )


def _sign_in_page(
    identity: Identity,
    request: Request,
    params: Mapping[str, str],
    client: Any,
    *,
    email: str,
    error: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The sign-in form with a CSRF token bound to the browser's CSRF cookie (set here if it has none)."""
    browser = request.cookies.get(cookie_name(identity, CSRF_COOKIE))
    fresh = not domain.looks_like_secret(browser)
    if fresh:
        browser = domain.new_secret()
    assert browser is not None
    response = pages.sign_in(
        params,
        client_name=client["name"],
        csrf_token=identity.csrf_token(browser),
        email=email,
        error=error,
        status=status,
        headers=headers,
    )
    if fresh:
        _set_cookie(response, identity, CSRF_COOKIE, browser)
    return response


@router.get("/authorize", response_class=Response)
async def authorize_form(request: Request) -> Response:
    """The sign-in form, or (single sign-on) a code at once when the browser's session may be used."""
    identity = _identity(request)
    try:
        params = _single_values(request.query_params)
    except OAuthError as exc:
        return pages.error("Cannot sign in", exc.description)
    checked, failure, params = await _authorize_checked(identity, params)
    if failure is not None:
        return failure
    client, auth_request = checked
    session_cookie = request.cookies.get(cookie_name(identity, SESSION_COOKIE))
    session = await identity.browser_session(session_cookie)
    outcome = identity.sso_outcome(auth_request, session)
    response: Response
    if outcome == "reuse_session":
        assert session is not None
        code = await identity.create_code(auth_request, session.signed_in())
        return _code_redirect(identity, auth_request, code)
    if outcome == "login_required":
        error = OAuthError("login_required", "the user must sign in (no usable sign-in session)")
        response = _error_redirect(identity, auth_request.redirect_uri, auth_request.state, error)
    else:
        response = _sign_in_page(identity, request, params, client, email=params.get("login_hint", ""))
    if session_cookie and session is None:
        _clear_cookie(response, identity, SESSION_COOKIE)  # a dead session's cookie is of no use to anyone
    return response


@router.post("/authorize", response_class=Response)
async def authorize_submit(request: Request) -> Response:
    identity = _identity(request)
    try:
        params = _single_values(await request.form())
    except OAuthError as exc:
        return pages.error("Cannot sign in", exc.description)
    checked, failure, params = await _authorize_checked(identity, params)
    if failure is not None:
        return failure
    client, auth_request = checked
    email = params.get("email", "")
    # Login CSRF: only a form this server gave to this browser may sign the browser in. Checked before the
    # password, so a forged post neither signs in nor counts towards the throttle.
    if not identity.csrf_ok(request.cookies.get(cookie_name(identity, CSRF_COOKIE)), params.get(pages.CSRF_FIELD)):
        return _sign_in_page(
            identity,
            request,
            params,
            client,
            email=email,
            error="This sign-in form has expired or was not opened in this browser. Please sign in again.",
            status=403,
        )
    try:
        signed_in = await identity.sign_in(
            email, params.get("password", ""), address=source_address(request), client_id=auth_request.client_id
        )
    except SignInThrottled as exc:
        return _sign_in_page(
            identity,
            request,
            params,
            client,
            email=email,
            error="Too many failed sign-in attempts. Try again later.",
            status=429,
            headers={"Retry-After": str(exc.retry_after_s)},
        )
    except SignInFailed:
        return _sign_in_page(
            identity, request, params, client, email=email, error="Incorrect email or password.", status=401
        )
    cookie, signed_in = await identity.open_browser_session(
        signed_in, replacing=request.cookies.get(cookie_name(identity, SESSION_COOKIE))
    )
    code = await identity.create_code(auth_request, signed_in)
    response = _code_redirect(identity, auth_request, code)
    _set_cookie(response, identity, SESSION_COOKIE, cookie, max_age=identity.settings.sso_session_ttl_s)
    return response


@router.post("/token")
async def token(request: Request) -> JSONResponse:
    identity = _identity(request)
    try:
        form = _single_values(await request.form())
        body = await identity.token(form, request.headers.get("authorization"))
    except OAuthError as exc:
        return _oauth_error_response(exc)
    return JSONResponse(body, headers=_NO_STORE)


@router.api_route("/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request, principal: Principal = Depends(current_principal)) -> JSONResponse:
    return JSONResponse(await _identity(request).userinfo(principal), headers=_NO_STORE)


@router.post("/revoke")
async def revoke(request: Request) -> Response:
    identity = _identity(request)
    try:
        form = _single_values(await request.form())
        await identity.revoke(form, request.headers.get("authorization"))
    except OAuthError as exc:
        return _oauth_error_response(exc)
    return Response(status_code=200, headers=_NO_STORE)


# -- end-session: RP-initiated logout, confirmed by the user unless the app sends the user's own ID token ----------
def _sign_out_page(
    identity: Identity,
    request: Request,
    params: Mapping[str, str],
    *,
    email: str | None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The "Sign out?" page, whose form POSTs to /end-session with a CSRF token bound to the browser's CSRF cookie
    (the sign-in form's mechanism, with its own purpose); the cookie is set here if the browser has none."""
    browser = request.cookies.get(cookie_name(identity, CSRF_COOKIE))
    fresh = not domain.looks_like_secret(browser)
    if fresh:
        browser = domain.new_secret()
    assert browser is not None
    response = pages.confirm_sign_out(
        params,
        csrf_token=identity.csrf_token(browser, purpose=domain.SIGN_OUT_FORM),
        email=email,
        error=error,
        status=status,
    )
    if fresh:
        _set_cookie(response, identity, CSRF_COOKIE, browser)
    return response


async def _end_session(request: Request, params: dict[str, str], *, confirmed: bool) -> Response:
    identity = _identity(request)
    try:
        signed_out = await identity.end_session(
            id_token_hint=params.get("id_token_hint"),
            post_logout_redirect_uri=params.get("post_logout_redirect_uri"),
            client_id=params.get("client_id"),
            browser_cookie=request.cookies.get(cookie_name(identity, SESSION_COOKIE)),
            confirmed=confirmed,
        )
    except OAuthError as exc:
        return pages.error("Cannot sign out", exc.description)
    response: Response
    if signed_out.confirm is not None:
        return _sign_out_page(identity, request, params, email=signed_out.confirm.email)
    if signed_out.refused is not None:
        response = pages.error("Signed out, but cannot return to the application", signed_out.refused.description)
    elif signed_out.redirect_to is None:
        response = pages.signed_out()
    else:
        target = _with_query(signed_out.redirect_to, {"state": params.get("state")})
        response = RedirectResponse(target, status_code=302, headers=_NO_STORE)
    if signed_out.clear_cookie:
        _clear_cookie(response, identity, SESSION_COOKIE)
    return response


@router.get("/end-session", response_class=Response)
async def end_session(request: Request) -> Response:
    """With an ``id_token_hint`` of the cookie's user (or no live session): signs out at once. Otherwise asks
    first: a GET is what any other site can make this browser send."""
    try:
        params = _single_values(request.query_params)
    except OAuthError as exc:
        return pages.error("Cannot sign out", exc.description)
    return await _end_session(request, params, confirmed=False)


@router.post("/end-session", response_class=Response)
async def end_session_confirmed(request: Request) -> Response:
    """The sign-out page's form: ends the browser's session only with the CSRF token made for this browser."""
    identity = _identity(request)
    try:
        params = _single_values(await request.form())
    except OAuthError as exc:
        return pages.error("Cannot sign out", exc.description)
    csrf_cookie = request.cookies.get(cookie_name(identity, CSRF_COOKIE))
    if not identity.csrf_ok(csrf_cookie, params.get(pages.CSRF_FIELD), purpose=domain.SIGN_OUT_FORM):
        session = await identity.browser_session(request.cookies.get(cookie_name(identity, SESSION_COOKIE)))
        return _sign_out_page(
            identity,
            request,
            params,
            email=session.email if session else None,
            error="This sign-out form has expired or was not opened in this browser. Please confirm again.",
            status=403,
        )
    return await _end_session(request, params, confirmed=True)
