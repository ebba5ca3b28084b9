"""The composition root of the seller view: the only place its parts are built and wired.

runtime (pool, migrations, the idempotent consumer of every topic for the live generation, the generation
pointer) -> the API routers, which read the live generation's schema. ``clock`` is the time deadlines are
judged at when a request gives no ``as_of``: tests pass a ``FixedClock``.
"""

from __future__ import annotations

from fastapi import FastAPI

from unified_seller_view.api import router
from unified_seller_view.offers_api import router as offers_router
from unified_seller_view.order_detail_api import router as order_detail_router
from unified_seller_view.runtime import SellerViewRuntime
from unified_seller_view.settings import Settings
from unified_shared.clock import Clock, system_clock
from unified_shared.runtime import create_app


def bootstrap(settings: Settings, *, clock: Clock = system_clock) -> FastAPI:
    runtime = SellerViewRuntime(settings)
    app = create_app(runtime, title="unified-seller: unified seller view")
    app.state.clock = clock
    app.include_router(router)
    app.include_router(offers_router)
    app.include_router(order_detail_router)
    return app
