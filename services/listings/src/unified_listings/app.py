"""The listings service app: runtime (pool, migrations, outbox relay, consumer) plus the listings API."""

from __future__ import annotations

from fastapi import FastAPI

from unified_listings.api import router
from unified_listings.handlers import Listings, apply_event
from unified_listings.settings import Settings
from unified_shared.participations import PARTICIPATIONS_MIGRATIONS
from unified_shared.runtime import ConsumerSpec, ServiceRuntime, create_app
from unified_shared.topics import IDENTITY_ACCOUNTS, REGIONS_FX_RATES, REGIONS_SUBSCRIPTIONS

MIGRATIONS = [PARTICIPATIONS_MIGRATIONS, ("listings", "unified_listings.migrations")]
CONSUMED_TOPICS = [REGIONS_SUBSCRIPTIONS, REGIONS_FX_RATES, IDENTITY_ACCOUNTS]


def create_service_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(
        settings, migrations=MIGRATIONS, consumer=ConsumerSpec("listings", CONSUMED_TOPICS, apply_event)
    )
    app = create_app(runtime, title="unified-seller listings")
    app.state.listings = Listings(lambda: runtime.pool, runtime.notify_relay)
    app.include_router(router)
    return app
