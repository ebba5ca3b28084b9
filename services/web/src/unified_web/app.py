"""The web app: shared runtime (session database, health, metrics), the pages, and what a page shows when
something is refused (a clear "not allowed", never another tenant's data)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from unified_shared.db import ensure_database_of
from unified_shared.problems import Problem
from unified_shared.runtime import ServiceRuntime, create_app
from unified_web import account, auth, inbox, sales
from unified_web.oidc import OidcClient
from unified_web.settings import Settings
from unified_web.upstream import NotAllowed, NotFound, SignedOut, UpstreamError
from unified_web.web import Deps, NotSignedIn, PageNotAllowed, SecurityHeaders, current_user, render

MIGRATIONS = [("web", "unified_web.migrations")]
STATIC = Path(__file__).parent / "static"


def create_service_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS, publishes=False)
    app = create_app(runtime, title="unified-seller web")
    http = httpx.AsyncClient(timeout=settings.http_timeout_s)
    oidc = OidcClient(
        http,
        issuer=settings.identity_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.client_secret,
        redirect_uri=settings.redirect_uri,
        post_logout_redirect_uri=settings.post_logout_redirect_uri,
    )
    app.state.web = Deps(settings, http, oidc, app.state.token_validator, runtime)

    runtime_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        settings.client_secret()  # fail at start, not at the first sign-in, when the secret is missing
        await ensure_database_of(settings.database_url)
        async with runtime_lifespan(app_) as state:
            try:
                yield state
            finally:
                await http.aclose()

    app.router.lifespan_context = lifespan
    identity = urlsplit(settings.identity_issuer)
    app.add_middleware(SecurityHeaders, identity_origin=f"{identity.scheme}://{identity.netloc}")
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for router in (auth.router, sales.router, inbox.router, account.router):
        app.include_router(router, include_in_schema=False)
    _install_page_errors(app)
    return app


def _install_page_errors(app: FastAPI) -> None:
    async def not_signed_in(request: Request, exc: Exception) -> Response:
        target = "/signin"
        if request.method == "GET" and request.headers.get("hx-request") != "true":
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            target += f"?next={quote(path, safe='')}"
        if request.headers.get("hx-request") == "true":
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def page_error(request: Request, exc: Exception) -> Response:
        try:
            user = await current_user(request)
        except NotSignedIn:
            return await not_signed_in(request, exc)
        if isinstance(exc, PageNotAllowed | NotAllowed):
            detail = exc.detail if isinstance(exc, NotAllowed) else "Your role or permissions do not include this page."
            return render(request, "not_allowed.html", {"detail": detail}, user=user, status=403)
        if isinstance(exc, NotFound):
            return render(request, "error.html", {"title": "Not found", "detail": exc.detail}, user=user, status=404)
        if isinstance(exc, Problem):
            return render(
                request, "error.html", {"title": exc.title, "detail": exc.detail}, user=user, status=exc.status
            )
        assert isinstance(exc, UpstreamError)
        status = 502 if exc.status >= 500 else exc.status
        title = "The platform did not answer" if exc.status >= 500 else "Refused"
        return render(request, "error.html", {"title": title, "detail": exc.detail}, user=user, status=status)

    app.add_exception_handler(NotSignedIn, not_signed_in)
    app.add_exception_handler(SignedOut, not_signed_in)
    for kind in (PageNotAllowed, UpstreamError, Problem):
        app.add_exception_handler(kind, page_error)
