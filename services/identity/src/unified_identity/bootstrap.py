"""The identity service's composition root: the only place its parts are built and wired.

runtime (pool, migrations, outbox relay) -> ``Identity`` (its commands, over the runtime, reading ``clock``)
-> the token validator (identity's own keys and sessions, read from its database) -> the routers; once
started, the signing key, the CSRF key and the default public client. Tests call ``bootstrap`` with their
settings."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from unified_identity import api, domain, keys, oidc, oidc_browser
from unified_identity.handlers import Identity
from unified_identity.problems import problem_of
from unified_identity.settings import Settings
from unified_shared.auth import JwksCache, TokenValidator
from unified_shared.clock import Clock, system_clock
from unified_shared.problems import problem_response
from unified_shared.runtime import ServiceRuntime, create_app

MIGRATIONS = [("identity", "unified_identity.migrations")]


def bootstrap(settings: Settings, *, clock: Clock = system_clock) -> FastAPI:
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS, publishes=True)
    identity = Identity(runtime, settings, clock=clock)
    runtime.on_start(identity.start)
    app = create_app(runtime, title="unified-seller identity")
    app.state.handlers = identity

    # This service validates bearer tokens against its own keys, read from its database (no HTTP to itself;
    # a local query needs no refetch rate limit, so a key rotated by another process is seen at once).
    async def fetch_jwks() -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            return await keys.jwks(conn, now=clock(), grace=identity.key_grace)

    app.state.token_validator = TokenValidator(
        JwksCache(fetch_jwks, ttl_s=30.0, min_refetch_interval_s=0.0),
        issuer=settings.issuer,
        audience=settings.token_audience,
        check=identity.session_refusal,  # the database, not the topic: a revoked session is refused at once
    )

    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, domain.DomainError)
        return problem_response(problem_of(exc), request.url.path)

    app.add_exception_handler(domain.DomainError, on_domain_error)  # identity's kinds on top of the shared ones
    app.include_router(oidc.router)
    app.include_router(oidc_browser.router)
    app.include_router(api.router)
    return app
