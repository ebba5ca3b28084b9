"""HTTP of the OpenID Connect provider's browser endpoints: authorize (the HTML sign-in form, or a code at once
through single sign-on) and end-session (RP-initiated logout, confirmed by the user unless the app sends the
user's own ID token). Errors are pages or redirects back to the client, never JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from unified_identity import domain, pages
from unified_identity.api import source_address
from unified_identity.domain import OAuthError
from unified_identity.handlers import AuthorizeRequest, Identity, SignInFailed, SignInThrottled
from unified_identity.oidc_web import (
    CSRF_COOKIE,
    NO_STORE,
    SESSION_COOKIE,
    clear_cookie,
    code_redirect,
    cookie_name,
    error_redirect,
    form_page,
    identity_of,
    set_cookie,
    single_values,
    with_query,
)
from unified_identity.results import Client

router = APIRouter(tags=["openid-connect"])


async def _authorize_request(
    request: Request, *, form: bool
) -> Response | tuple[dict[str, str], Client, AuthorizeRequest]:
    """Read and validate an authorization request: (params, client, request), or the answer to send instead (an
    error page where the redirect URI cannot be trusted, RFC 6749 4.1.2.1; else an error redirect)."""
    identity = identity_of(request)
    params = await _params(request, form=form, title="Cannot sign in")
    if isinstance(params, Response):
        return params
    try:
        client = await identity.check_client_redirect(params.get("client_id"), params.get("redirect_uri"))
    except OAuthError as exc:
        return pages.error("Cannot sign in", f"{exc.error}: {exc.description}", status=400)
    try:
        auth_request = identity.check_authorize_params(params)
    except OAuthError as exc:
        return error_redirect(identity, params["redirect_uri"], params.get("state"), exc)
    return params, client, auth_request


def _sign_in_page(
    identity: Identity,
    request: Request,
    params: Mapping[str, str],
    client: Client,
    *,
    email: str,
    error: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The sign-in form with a CSRF token bound to the browser's CSRF cookie (set here if it has none)."""
    return form_page(
        identity,
        request,
        lambda csrf_token: pages.sign_in(
            params,
            client_name=client.name,
            csrf_token=csrf_token,
            email=email,
            error=error,
            status=status,
            headers=headers,
        ),
    )


async def _params(request: Request, *, form: bool, title: str) -> dict[str, str] | Response:
    """The request's parameters, each given once (else an error page titled ``title``)."""
    try:
        return single_values(await request.form() if form else request.query_params)
    except OAuthError as exc:
        return pages.error(title, exc.description)


_Answer = Callable[[Request, Identity, dict[str, str], Client, AuthorizeRequest], Awaitable[Response]]


async def _answer_valid(request: Request, *, form: bool, answer: _Answer) -> Response:
    """``answer``'s response to a valid authorization request; the error page or redirect to any other."""
    checked = await _authorize_request(request, form=form)
    if isinstance(checked, Response):
        return checked
    return await answer(request, identity_of(request), *checked)


@router.get("/authorize", response_class=Response)
async def authorize_form(request: Request) -> Response:
    """The sign-in form, or (single sign-on) a code at once when the browser's session may be used."""
    return await _answer_valid(request, form=False, answer=_offer_sign_in)


@router.post("/authorize", response_class=Response)
async def authorize_submit(request: Request) -> Response:
    """The sign-in form posted back: a code for the client, or the form again saying why not."""
    return await _answer_valid(request, form=True, answer=_sign_in_posted)


async def _offer_sign_in(
    request: Request, identity: Identity, params: dict[str, str], client: Client, auth_request: AuthorizeRequest
) -> Response:
    session_cookie = request.cookies.get(cookie_name(identity, SESSION_COOKIE))
    session = await identity.browser_session(session_cookie)
    outcome = identity.sso_outcome(auth_request, session)
    response: Response
    if outcome == "reuse_session":
        assert session is not None
        code = await identity.create_code(auth_request, session.signed_in())
        return code_redirect(identity, auth_request, code)
    if outcome == "login_required":
        error = OAuthError("login_required", "the user must sign in (no usable sign-in session)")
        response = error_redirect(identity, auth_request.redirect_uri, auth_request.state, error)
    else:
        response = _sign_in_page(identity, request, params, client, email=params.get("login_hint", ""))
    if session_cookie and session is None:
        clear_cookie(response, identity, SESSION_COOKIE)  # a dead session's cookie is of no use to anyone
    return response


async def _sign_in_posted(
    request: Request, identity: Identity, params: dict[str, str], client: Client, auth_request: AuthorizeRequest
) -> Response:
    email = params.get("email", "")

    def refused(error: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
        """The sign-in form again, with the email as typed and why the post was refused."""
        return _sign_in_page(
            identity, request, params, client, email=email, error=error, status=status, headers=headers
        )

    # Login CSRF: only a form this server gave to this browser may sign the browser in. Checked before the
    # password, so a forged post neither signs in nor counts towards the throttle.
    if not identity.csrf_ok(request.cookies.get(cookie_name(identity, CSRF_COOKIE)), params.get(pages.CSRF_FIELD)):
        return refused("This sign-in form has expired or was not opened in this browser. Please sign in again.", 403)
    try:
        signed_in = await identity.sign_in(
            email, params.get("password", ""), address=source_address(request), client_id=auth_request.client_id
        )
    except SignInThrottled as exc:
        return refused("Too many failed sign-in attempts. Try again later.", 429, {"Retry-After": str(exc.retry_after)})
    except SignInFailed:
        return refused("Incorrect email or password.", 401)
    cookie, signed_in = await identity.open_browser_session(
        signed_in, replacing=request.cookies.get(cookie_name(identity, SESSION_COOKIE))
    )
    code = await identity.create_code(auth_request, signed_in)
    response = code_redirect(identity, auth_request, code)
    set_cookie(response, identity, SESSION_COOKIE, cookie, max_age=identity.settings.sso_session_ttl_s)
    return response


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
    return form_page(
        identity,
        request,
        lambda csrf_token: pages.confirm_sign_out(
            params, csrf_token=csrf_token, email=email, error=error, status=status
        ),
        purpose=domain.SIGN_OUT_FORM,
    )


async def _end_session(request: Request, params: dict[str, str], *, confirmed: bool) -> Response:
    identity = identity_of(request)
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
        target = with_query(signed_out.redirect_to, {"state": params.get("state")})
        response = RedirectResponse(target, status_code=302, headers=NO_STORE)
    if signed_out.clear_cookie:
        clear_cookie(response, identity, SESSION_COOKIE)
    return response


@router.get("/end-session", response_class=Response)
async def end_session(request: Request) -> Response:
    """With an ``id_token_hint`` of the cookie's user (or no live session): signs out at once. Otherwise asks
    first: a GET is what any other site can make this browser send."""
    params = await _params(request, form=False, title="Cannot sign out")
    if isinstance(params, Response):
        return params
    return await _end_session(request, params, confirmed=False)


@router.post("/end-session", response_class=Response)
async def end_session_confirmed(request: Request) -> Response:
    """The sign-out page's form: ends the browser's session only with the CSRF token made for this browser."""
    identity = identity_of(request)
    params = await _params(request, form=True, title="Cannot sign out")
    if isinstance(params, Response):
        return params
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
