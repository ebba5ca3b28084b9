"""What the OpenID Connect endpoints share at the HTTP edge: single-valued parameters, RFC 6749 error answers
(the status of each error code is decided here, once), redirects back to the client, and the cookies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData, QueryParams

from unified_identity import domain
from unified_identity.domain import OAuthError
from unified_identity.handlers import AuthorizeRequest, Identity
from unified_shared.bounds import check_line

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def identity_of(request: Request) -> Identity:
    identity: Identity = request.app.state.handlers
    return identity


MAX_PARAMETER = 4096


def single_values(items: FormData | QueryParams) -> dict[str, str]:
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


def oauth_status(exc: OAuthError) -> int:
    """RFC 6749 5.2: a client that failed to authenticate gets 401 (with a challenge), every other error 400."""
    return 401 if exc.error == "invalid_client" else 400


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    status = oauth_status(exc)
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="unified-seller"'
    return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=status, headers=headers)


def with_query(uri: str, params: Mapping[str, str | None]) -> str:
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def error_redirect(identity: Identity, redirect_uri: str, state: str | None, exc: OAuthError) -> RedirectResponse:
    target = with_query(
        redirect_uri,
        {"error": exc.error, "error_description": exc.description, "state": state, "iss": identity.settings.issuer},
    )
    return RedirectResponse(target, status_code=302, headers=NO_STORE)


def code_redirect(identity: Identity, auth_request: AuthorizeRequest, code: str) -> RedirectResponse:
    target = with_query(
        auth_request.redirect_uri, {"code": code, "state": auth_request.state, "iss": identity.settings.issuer}
    )
    return RedirectResponse(target, status_code=302, headers=NO_STORE)


# -- cookies ------------------------------------------------------------------------------------------------------
# Both are HttpOnly, SameSite=Lax, Path=/, host-only; over https they are Secure and carry the __Host- prefix,
# so a sibling subdomain cannot plant or overwrite them.
SESSION_COOKIE = "unified_sso"  # names the browser session (single sign-on); the database keeps its hash
CSRF_COOKIE = "unified_signin_csrf"  # the browser half of the sign-in form's double-submit CSRF token


def cookie_name(identity: Identity, base: str) -> str:
    return f"__Host-{base}" if identity.settings.cookies_secure else base


def set_cookie(response: Response, identity: Identity, base: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        cookie_name(identity, base),
        value,
        max_age=max_age,
        path="/",
        secure=identity.settings.cookies_secure,
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, identity: Identity, base: str) -> None:
    response.delete_cookie(
        cookie_name(identity, base), path="/", secure=identity.settings.cookies_secure, httponly=True, samesite="lax"
    )


def form_page(
    identity: Identity,
    request: Request,
    render: Callable[[str], Response],
    *,
    purpose: bytes = domain.SIGN_IN_FORM,
) -> Response:
    """A page whose form carries a CSRF token (``render(token)``) bound to the browser's CSRF cookie, which is set
    here if the browser has none."""
    browser = request.cookies.get(cookie_name(identity, CSRF_COOKIE))
    fresh = not domain.looks_like_secret(browser)
    if fresh:
        browser = domain.new_secret()
    assert browser is not None
    response = render(identity.csrf_token(browser, purpose=purpose))
    if fresh:
        set_cookie(response, identity, CSRF_COOKIE, browser)
    return response
