"""Sign-in and sign-out through identity (OpenID Connect, code + PKCE, confidential client).

Single sign-on: a browser signed in at identity gets a code without a password form. Signing out here ends
this app's session, revokes its refresh token and sends the browser to identity's end-session with the
user's ID token, so identity's single sign-on session ends too.
"""

from __future__ import annotations

import secrets
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from unified_web import sessions
from unified_web.oidc import SignInFailed, pkce_pair
from unified_web.web import (
    NotSignedIn,
    check_csrf,
    clear_session_cookie,
    cookie_name,
    current_user,
    deps,
    form_data,
    render,
    safe_return_to,
    set_session_cookie,
)

router = APIRouter()


@router.get("/signin")
async def sign_in(request: Request, next: str | None = None) -> Response:
    """Start a sign-in: a pending session (state, nonce, PKCE verifier) and the redirect to identity."""
    web = deps(request)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier, challenge = pkce_pair()
    cookie = await sessions.start_login(
        web.pool,
        now=web.clock(),
        ttl_s=web.settings.login_ttl_s,
        state=state,
        nonce=nonce,
        verifier=verifier,
        return_to=safe_return_to(next),
    )
    response = RedirectResponse(await web.oidc.authorization_url(state=state, nonce=nonce, challenge=challenge), 302)
    set_session_cookie(response, web.settings, cookie, web.settings.login_ttl_s)
    return response


@router.get("/auth/callback")
async def callback(request: Request) -> Response:
    web = deps(request)
    cookie = request.cookies.get(cookie_name(web.settings))
    now = web.clock()
    pending = await sessions.load(web.pool, cookie, now)
    params = request.query_params
    if pending is None or pending.login_state is None or cookie is None:
        return _failed(request, "This sign-in has expired or was started in another browser. Please sign in again.")
    if not secrets.compare_digest(params.get("state", ""), pending.login_state):
        return _failed(request, "The answer from identity does not belong to this sign-in. Please sign in again.")
    if params.get("error"):
        return _failed(request, f"identity answered: {params.get('error_description') or params['error']}")
    code = params.get("code")
    if not code:
        return _failed(request, "identity sent no sign-in code.")
    try:
        assert pending.login_verifier is not None and pending.login_nonce is not None
        tokens = await web.oidc.exchange_code(code, pending.login_verifier, now)
        if tokens.id_token is None:
            raise SignInFailed("identity sent no ID token")
        claims = await web.oidc.id_claims(tokens.id_token, pending.login_nonce)
    except SignInFailed as exc:
        return _failed(request, str(exc))
    signed_in = await sessions.complete_login(
        web.pool,
        cookie,
        now=now,
        ttl_s=web.settings.session_ttl_s,
        user_id=UUID(claims.user_id),
        account_id=UUID(claims.account_id),
        email=claims.email,
        tokens=tokens,
    )
    response = RedirectResponse(safe_return_to(pending.return_to), status_code=303)
    set_session_cookie(response, web.settings, signed_in, web.settings.session_ttl_s)
    return response


def _failed(request: Request, message: str) -> Response:
    response = render(request, "signin_failed.html", {"message": message}, status=400)
    clear_session_cookie(response, deps(request).settings)
    return response


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    """Ends this session (CSRF-checked) and identity's single sign-on session through end-session."""
    web = deps(request)
    try:
        user = await current_user(request)
    except NotSignedIn:
        return RedirectResponse("/signed-out", status_code=303)
    check_csrf(user, await form_data(request), request)
    cookie = request.cookies.get(cookie_name(web.settings))
    await sessions.delete(web.pool, cookie)
    if user.session.refresh_token:
        await web.oidc.revoke(user.session.refresh_token)
    response = RedirectResponse(await web.oidc.end_session_url(user.session.id_token), status_code=303)
    clear_session_cookie(response, web.settings)
    return response


@router.get("/signed-out")
async def signed_out(request: Request) -> Response:
    response = render(request, "signed_out.html", {})
    clear_session_cookie(response, deps(request).settings)
    return response
