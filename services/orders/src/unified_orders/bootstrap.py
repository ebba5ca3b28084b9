"""The composition root of a regional orders instance: the only place its parts are built and wired.

runtime (pool, migrations, outbox relay, the consumer of regions.subscriptions.v1) -> units of work over its
pool -> the participation gate -> ``OrdersHandlers`` -> the API router. Tests call ``bootstrap`` with their
settings; unit tests build ``OrdersHandlers`` over ``unified_shared.uow.FakeUnits`` instead.
"""

from __future__ import annotations

from fastapi import FastAPI

from unified_orders.api import router
from unified_orders.handlers import OrdersHandlers
from unified_orders.settings import Settings
from unified_orders.store import PgOrdersStore
from unified_shared.bootstrap import PARTICIPATIONS_MIGRATIONS, participation_gate, participations_consumer, pg_units
from unified_shared.clock import Clock, system_clock
from unified_shared.runtime import ServiceRuntime, create_app

MIGRATIONS = [("orders", "unified_orders.migrations"), PARTICIPATIONS_MIGRATIONS]


def bootstrap(settings: Settings, *, clock: Clock = system_clock) -> FastAPI:
    """The app of one regional instance. Orders decide nothing by the time of day: ``clock`` is taken for
    the signature every service shares and goes unused."""
    del clock
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS, consumer=participations_consumer(settings.service_name))
    app = create_app(runtime, title=f"unified-seller orders ({settings.region.value})")
    units = pg_units(runtime, PgOrdersStore)
    app.state.handlers = OrdersHandlers(
        units, settings.region, participation_gate(runtime, settings), parallel=settings.ingest_parallel
    )
    app.state.region = settings.region
    app.include_router(router)
    return app
