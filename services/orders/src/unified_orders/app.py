"""The orders service app of one region: runtime (pool, migrations, outbox relay) plus the orders API."""

from __future__ import annotations

from fastapi import FastAPI

from unified_orders.api import router
from unified_orders.handlers import OrdersHandlers
from unified_orders.settings import Settings
from unified_shared.runtime import ServiceRuntime, create_app

MIGRATIONS = [("orders", "unified_orders.migrations")]


def create_service_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS)
    app = create_app(runtime, title=f"unified-seller orders ({settings.region.value})")
    app.state.handlers = OrdersHandlers(runtime, settings.region)
    app.state.region = settings.region
    app.include_router(router)
    return app
