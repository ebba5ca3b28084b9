"""The composition root of a regional buyer-messages instance: the only place its parts are built and wired.

runtime (pool, migrations, outbox relay, the consumer of regions.subscriptions.v1) -> units of work over its
pool -> the participation gate and the clock -> ``MessagesHandlers`` -> the API router. Tests call
``bootstrap`` with their settings and a ``FixedClock``; unit tests build ``MessagesHandlers`` over
``unified_shared.uow.FakeUnits`` instead.
"""

from __future__ import annotations

from fastapi import FastAPI

from unified_messages.api import router
from unified_messages.handlers import MessagesHandlers
from unified_messages.settings import Settings
from unified_messages.store import PgMessagesStore
from unified_shared.bootstrap import PARTICIPATIONS_MIGRATIONS, participation_gate, participations_consumer, pg_units
from unified_shared.clock import Clock, system_clock
from unified_shared.runtime import ServiceRuntime, create_app

MIGRATIONS = [("messages", "unified_messages.migrations"), PARTICIPATIONS_MIGRATIONS]


def bootstrap(settings: Settings, *, clock: Clock = system_clock) -> FastAPI:
    """``clock`` decides "now" for default times and for is_overdue / due_within_4h (tests inject one)."""
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS, consumer=participations_consumer(settings.service_name))
    app = create_app(runtime, title=f"unified-seller buyer messages ({settings.region.value})")
    units = pg_units(runtime, PgMessagesStore)
    app.state.handlers = MessagesHandlers(units, settings.region, clock, participation_gate(runtime, settings))
    app.state.region = settings.region
    app.include_router(router)
    return app
