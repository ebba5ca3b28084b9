"""The web app's composition root: the only place its parts are built and wired.

runtime (the session database: created if missing, migrated; health, metrics; no outbox, no consumer) ->
one HTTP client -> the OIDC client over it -> ``Deps`` (what every page reads, with ``clock``) -> the page
routers, static files and what a page shows when something is refused. Tests call ``bootstrap`` with their
settings and clock.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from unified_shared.clock import Clock, system_clock
from unified_shared.db import ensure_database_of
from unified_shared.runtime import ServiceRuntime, create_app
from unified_web import account, auth, inbox, offers, sales
from unified_web.oidc import OidcClient
from unified_web.page_errors import install_page_errors
from unified_web.settings import Settings
from unified_web.web import Deps, SecurityHeaders

MIGRATIONS = [("web", "unified_web.migrations")]
STATIC = Path(__file__).parent / "static"


class WebRuntime(ServiceRuntime):
    """The shared runtime, plus what the web app needs around it: the client secret checked and the session
    database created before the pool opens (web owns no facts, so nothing else creates it); the HTTP client
    closed after the runtime stops."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        super().__init__(settings, migrations=MIGRATIONS, publishes=False)
        self.web_settings = settings
        self.http = http

    async def start(self) -> None:
        self.web_settings.client_secret()  # fail at start, not at the first sign-in, when the secret is missing
        await ensure_database_of(self.web_settings.database_url)
        await super().start()

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            await self.http.aclose()


def bootstrap(settings: Settings, *, clock: Clock = system_clock) -> FastAPI:
    http = httpx.AsyncClient(timeout=settings.http_timeout_s)
    runtime = WebRuntime(settings, http)
    app = create_app(runtime, title="unified-seller web")
    oidc = OidcClient(http, settings, clock=clock)
    app.state.web = Deps(settings, http, oidc, app.state.token_validator, runtime, clock)
    identity = urlsplit(settings.identity_issuer)
    app.add_middleware(SecurityHeaders, identity_origin=f"{identity.scheme}://{identity.netloc}")
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for router in (auth.router, sales.router, offers.router, inbox.router, account.router):
        app.include_router(router, include_in_schema=False)
    install_page_errors(app)
    return app
