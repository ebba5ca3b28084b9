"""The listings service's composition root: the only place its parts are built and wired.

runtime (pool, migrations, outbox relay, the consumer of subscriptions, FX rates and accounts, re-pricing at
``clock``'s time) -> ``Listings`` (its commands and queries, over the runtime's pool) -> the API router. Tests
call ``bootstrap`` with their settings."""

from __future__ import annotations

from fastapi import FastAPI

from unified_listings.api import router
from unified_listings.handlers import Listings, event_handler
from unified_listings.settings import Settings
from unified_shared.clock import Clock, system_clock
from unified_shared.participations import PARTICIPATIONS_MIGRATIONS
from unified_shared.runtime import ConsumerSpec, ServiceRuntime, create_app
from unified_shared.topics import IDENTITY_ACCOUNTS, REGIONS_FX_RATES, REGIONS_SUBSCRIPTIONS

MIGRATIONS = [PARTICIPATIONS_MIGRATIONS, ("listings", "unified_listings.migrations")]
CONSUMED_TOPICS = [REGIONS_SUBSCRIPTIONS, REGIONS_FX_RATES, IDENTITY_ACCOUNTS]


def bootstrap(settings: Settings, *, clock: Clock = system_clock) -> FastAPI:
    runtime = ServiceRuntime(
        settings, migrations=MIGRATIONS, consumer=ConsumerSpec("listings", CONSUMED_TOPICS, event_handler(clock))
    )
    app = create_app(runtime, title="unified-seller listings")
    app.state.handlers = Listings(lambda: runtime.pool, runtime.notify_relay, clock=clock)
    app.include_router(router)
    return app
