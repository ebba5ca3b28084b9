"""The seller view's FastAPI app: the shared runtime (health, metrics, consumer) plus the view's API."""

from __future__ import annotations

from fastapi import FastAPI

from unified_seller_view.api import Clock, router, system_clock
from unified_seller_view.offers_api import router as offers_router
from unified_seller_view.runtime import SellerViewRuntime
from unified_seller_view.settings import Settings
from unified_shared.runtime import create_app


def create_service_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """``clock`` is the time deadlines are judged at when a request gives no ``as_of`` (tests inject one)."""
    settings = settings or Settings()
    runtime = SellerViewRuntime(settings)
    app = create_app(runtime, title="unified-seller: unified seller view")
    app.state.clock = clock or system_clock
    app.include_router(router)
    app.include_router(offers_router)
    return app
