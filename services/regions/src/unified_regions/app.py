"""Assembles the regions service: runtime (pool, migrations, outbox relay, identity consumer) + routes."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from unified_regions import api, handlers
from unified_regions.fetcher import FxFetcher
from unified_regions.settings import Settings
from unified_shared.runtime import ConsumerSpec, ServiceRuntime, create_app
from unified_shared.topics import IDENTITY_ACCOUNTS

MIGRATIONS = [("regions", "unified_regions.migrations")]


class RegionsRuntime(ServiceRuntime):
    """The shared runtime plus the scheduled FX import, whose last success shows in /health/ready."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings,
            migrations=MIGRATIONS,
            publishes=True,
            consumer=ConsumerSpec(name="regions", topics=[IDENTITY_ACCOUNTS], handlers=handlers.HANDLERS),
        )
        self.fx_settings = settings
        self.fetcher = FxFetcher(
            lambda: self.pool,
            url=settings.fx_fetch_url,
            extra_sources=settings.fx_extra_sources,
            notify=self.notify_relay,
            attempts=settings.fx_fetch_attempts,
            backoff_base_s=settings.fx_fetch_backoff_s,
        )

    async def start(self) -> None:
        await super().start()
        if self.fx_settings.fx_fetch_enabled:
            task = asyncio.create_task(self.fetcher.run(self.fx_settings.fx_fetch_interval_s), name="fx-fetch")
            self._tasks.append(task)

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        ok, detail = await super().readiness()
        if self.fx_settings.fx_fetch_enabled:
            detail.update(self.fetcher.status.as_dict())  # informative: a stale import does not unready it
        return ok, detail


def create_runtime(settings: Settings) -> ServiceRuntime:
    return RegionsRuntime(settings)


def create_service_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = create_runtime(settings)
    app = create_app(runtime, title="unified-seller regions")
    app.state.settings = settings
    app.include_router(api.router)
    return app
