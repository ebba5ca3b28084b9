"""The orders service app of one region: runtime (pool, migrations, outbox relay) plus the orders API."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI

from unified_orders.api import router
from unified_orders.handlers import OrdersHandlers
from unified_orders.settings import Settings
from unified_shared.consumer import ReceivedEvent
from unified_shared.participations import PARTICIPATIONS_MIGRATIONS, Gate, apply_subscription_event
from unified_shared.runtime import ConsumerSpec, ServiceRuntime, create_app
from unified_shared.topics import REGIONS_SUBSCRIPTIONS

MIGRATIONS = [("orders", "unified_orders.migrations"), PARTICIPATIONS_MIGRATIONS]


async def learn_participation(conn: asyncpg.Connection, received: ReceivedEvent) -> None:
    """Consumer handler: where each account may sell (new orders need an opened marketplace)."""
    await apply_subscription_event(conn, received.event)


def create_service_app(settings: Settings) -> FastAPI:
    consumer = ConsumerSpec(settings.service_name, [REGIONS_SUBSCRIPTIONS], learn_participation)
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS, consumer=consumer)
    app = create_app(runtime, title=f"unified-seller orders ({settings.region.value})")
    gate = (
        Gate(
            lambda: runtime.pool,
            lambda: runtime.consumer.caught_up_as_of if runtime.consumer else None,
            settle_s=settings.participation_settle_s,
            wait_s=settings.participation_wait_s,
        )
        if settings.participation_required
        else None
    )
    app.state.handlers = OrdersHandlers(runtime, settings.region, gate)
    app.state.region = settings.region
    app.include_router(router)
    return app
