"""The buyer-messages service app of one region: runtime (pool, migrations, outbox relay) plus the API."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI

from unified_messages.api import router
from unified_messages.handlers import Clock, MessagesHandlers, utc_now
from unified_messages.settings import Settings
from unified_shared.consumer import ReceivedEvent
from unified_shared.participations import PARTICIPATIONS_MIGRATIONS, Gate, apply_subscription_event
from unified_shared.runtime import ConsumerSpec, ServiceRuntime, create_app
from unified_shared.topics import REGIONS_SUBSCRIPTIONS

MIGRATIONS = [("messages", "unified_messages.migrations"), PARTICIPATIONS_MIGRATIONS]


async def learn_participation(conn: asyncpg.Connection, received: ReceivedEvent) -> None:
    """Consumer handler: where each account may sell (a new thread needs an opened marketplace)."""
    await apply_subscription_event(conn, received.event)


def create_service_app(settings: Settings, *, clock: Clock = utc_now) -> FastAPI:
    """``clock`` decides "now" for default times and for is_overdue / due_within_4h (tests inject one)."""
    consumer = ConsumerSpec(settings.service_name, [REGIONS_SUBSCRIPTIONS], learn_participation)
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS, consumer=consumer)
    app = create_app(runtime, title=f"unified-seller buyer messages ({settings.region.value})")
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
    app.state.handlers = MessagesHandlers(runtime, settings.region, clock, gate)
    app.state.region = settings.region
    app.include_router(router)
    return app
