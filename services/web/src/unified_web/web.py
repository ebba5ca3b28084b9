"""What every page needs: the signed-in user (session, verified token, platform client), CSRF checks,
security headers, and rendering with the locale's formatting."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from unified_shared.auth import Principal, TokenValidator
from unified_shared.clock import Clock
from unified_shared.problems import Problem
from unified_shared.runtime import ServiceRuntime
from unified_web import domain, formatting, sessions
from unified_web.oidc import OidcClient
from unified_web.settings import Settings
from unified_web.upstream import Platform

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Refresh the access token when less than this is left, so a page's calls never race its expiry.
REFRESH_MARGIN_S = 60


def cookie_name(settings: Settings) -> str:
    return "__Host-unified_web" if settings.secure_cookies else "unified_web"


def set_session_cookie(response: Response, settings: Settings, value: str, max_age: int) -> None:
    response.set_cookie(
        cookie_name(settings),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings), path="/", httponly=True, samesite="lax", secure=settings.secure_cookies
    )


class NotSignedIn(Exception):
    """No live session: the page sends the browser to sign in (and back here afterwards)."""


@dataclass(slots=True)
class Deps:
    """Long-lived parts of the app, built with it."""

    settings: Settings
    http: httpx.AsyncClient
    oidc: OidcClient
    validator: TokenValidator
    runtime: ServiceRuntime
    clock: Clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool


@dataclass(slots=True)
class User:
    """The signed-in user of one request."""

    session: sessions.WebSession
    principal: Principal
    platform: Platform

    @property
    def csrf(self) -> str:
        return self.session.csrf_token


def deps(request: Request) -> Deps:
    web: Deps = request.app.state.web
    return web


def locale_of(request: Request) -> str:
    settings: Settings = deps(request).settings
    return formatting.negotiate(request.headers.get("accept-language"), settings.default_locale)


async def current_user(request: Request) -> User:
    """The session's user with a fresh access token, verified like every service verifies it."""
    web = deps(request)
    cookie = request.cookies.get(cookie_name(web.settings))
    if not sessions.looks_like_secret(cookie):
        raise NotSignedIn
    assert cookie is not None
    session = await sessions.refreshed_access_token(
        web.pool, cookie, now=web.clock(), margin_s=REFRESH_MARGIN_S, refresh=web.oidc.refresh
    )
    if session is None or not session.signed_in:
        raise NotSignedIn
    assert session.access_token is not None
    try:
        principal = await web.validator.validate(session.access_token)
    except Problem:
        await sessions.delete(web.pool, cookie)
        raise NotSignedIn from None
    platform = Platform(web.http, web.settings, session.access_token, str(principal.account_id))
    return User(session, principal, platform)


async def require_page(request: Request, path: str) -> User:
    user = await current_user(request)
    if not domain.may_see(user.principal, path):
        raise PageNotAllowed(path)
    return user


class PageNotAllowed(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def check_csrf(user: User, form: dict[str, Any], request: Request) -> None:
    """Every state-changing request carries the session's CSRF token (form field or htmx header)."""
    sent = str(form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
    if not sent or not secrets.compare_digest(sent, user.session.csrf_token):
        raise Problem(403, "Forbidden", "this form has expired or was not made by this site: reload the page")


async def form_data(request: Request) -> dict[str, Any]:
    """A form as a dict; repeated fields (checkboxes) as lists."""
    form = await request.form()
    data: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        data[key] = values if len(values) > 1 else (values[0] if values else "")
    return data


def safe_return_to(value: str | None) -> str:
    """Only a path of this site (no scheme, no host, no //): never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def render(
    request: Request, template: str, context: dict[str, Any], *, user: User | None = None, status: int = 200
) -> HTMLResponse:
    locale = locale_of(request)
    ctx = {
        "request": request,
        "user": user,
        "nav": domain.navigation(user.principal) if user else [],
        "csrf": user.csrf if user else "",
        "locale": locale,
        "money": lambda v, c: formatting.money(v, c, locale),
        "number": lambda v: formatting.number(v, locale),
        "percent": lambda v: formatting.percent(v, locale),
        "instant": lambda v: formatting.instant(v, locale),
        "day": lambda v: formatting.day(v, locale),
        "is_htmx": request.headers.get("hx-request") == "true",
        **context,
    }
    return TEMPLATES.TemplateResponse(request, template, ctx, status_code=status)


def redirect(url: str, request: Request) -> Response:
    """303 after a POST; for htmx an HX-Redirect so the whole page moves."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


class SecurityHeaders(BaseHTTPMiddleware):
    """CSP without inline script or style, no framing, no sniffing, no referrer leaks, no caching of pages."""

    def __init__(self, app: Any, *, identity_origin: str) -> None:
        super().__init__(app)
        self.csp = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
            f"form-action 'self' {identity_origin}"
        )

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
