"""The composition root of the regions service: the only place its parts are built and wired.

runtime (pool, migrations, outbox relay, the consumer of identity.accounts.v1) -> units of work over its
pool -> ``RegionsHandlers`` (participations) and ``FxImports`` (rates) -> the scheduled ``FxFetcher`` (a
background task of the runtime, its status in /health/ready) -> the API router. The CLI's import wires
``FxImports`` over a bare pool with ``fx_imports_over``.
"""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI

from unified_regions import api, fx_api, handlers
from unified_regions.fetcher import FxFetcher
from unified_regions.fx_imports import FxImports
from unified_regions.handlers import RegionsHandlers, TimeRules
from unified_regions.settings import Settings
from unified_regions.store import PgRegionsStore
from unified_shared.bootstrap import pg_units
from unified_shared.clock import Clock, system_clock
from unified_shared.runtime import ConsumerSpec, ServiceRuntime, create_app
from unified_shared.topics import IDENTITY_ACCOUNTS
from unified_shared.uow import PgUnits

MIGRATIONS = [("regions", "unified_regions.migrations")]


def bootstrap(settings: Settings | None = None, *, clock: Clock = system_clock) -> FastAPI:
    """``clock`` is "now" for default effective times, their bounds and the FX import's times."""
    settings = settings or Settings()
    consumer = ConsumerSpec(name="regions", topics=[IDENTITY_ACCOUNTS], handlers=handlers.HANDLERS)
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS, publishes=True, consumer=consumer)
    app = create_app(runtime, title="unified-seller regions")
    units = pg_units(runtime, PgRegionsStore)
    rules = TimeRules(future_skew_s=settings.future_skew_s, backdate_grace_s=settings.backdate_grace_s)
    fx = FxImports(units, clock)
    if settings.fx_fetch_enabled:
        fetcher = FxFetcher(
            fx,
            url=settings.fx_fetch_url,
            extra_sources=settings.fx_extra_sources,
            clock=clock,
            attempts=settings.fx_fetch_attempts,
            backoff_base_s=settings.fx_fetch_backoff_s,
        )
        runtime.run_in_background("fx-fetch", lambda: fetcher.run(settings.fx_fetch_interval_s))
        runtime.report_in_readiness(fetcher.status.as_dict)  # informative: a stale import does not unready it
    app.state.settings = settings
    app.state.handlers = RegionsHandlers(units, rules, clock)
    app.state.fx = fx
    app.include_router(api.router)
    app.include_router(fx_api.router)
    return app


def fx_imports_over(pool: asyncpg.Pool, clock: Clock = system_clock) -> FxImports:
    """FX imports outside the service (the CLI): the running service's relay publishes the new events."""
    return FxImports(PgUnits(lambda: pool, PgRegionsStore, lambda: None), clock)
