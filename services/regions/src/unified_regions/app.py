"""Assembles the regions service: runtime (pool, migrations, outbox relay, identity consumer) + routes."""

from __future__ import annotations

from fastapi import FastAPI

from unified_regions import api, handlers
from unified_regions.settings import Settings
from unified_shared.runtime import ConsumerSpec, ServiceRuntime, create_app
from unified_shared.topics import IDENTITY_ACCOUNTS

MIGRATIONS = [("regions", "unified_regions.migrations")]


def create_runtime(settings: Settings) -> ServiceRuntime:
    return ServiceRuntime(
        settings,
        migrations=MIGRATIONS,
        publishes=True,
        consumer=ConsumerSpec(name="regions", topics=[IDENTITY_ACCOUNTS], handlers=handlers.HANDLERS),
    )


def create_service_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = create_runtime(settings)
    app = create_app(runtime, title="unified-seller regions")
    app.state.settings = settings
    app.include_router(api.router)
    return app
