"""The buyer-messages service app of one region: runtime (pool, migrations, outbox relay) plus the API."""

from __future__ import annotations

from fastapi import FastAPI

from unified_messages.api import router
from unified_messages.handlers import Clock, MessagesHandlers, utc_now
from unified_messages.settings import Settings
from unified_shared.runtime import ServiceRuntime, create_app

MIGRATIONS = [("messages", "unified_messages.migrations")]


def create_service_app(settings: Settings, *, clock: Clock = utc_now) -> FastAPI:
    """``clock`` decides "now" for default times and for is_overdue / due_within_4h (tests inject one)."""
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS)
    app = create_app(runtime, title=f"unified-seller buyer messages ({settings.region.value})")
    app.state.handlers = MessagesHandlers(runtime, settings.region, clock)
    app.state.region = settings.region
    app.include_router(router)
    return app
