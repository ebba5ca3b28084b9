"""Kept for callers that build the app by its old name (other services' tests, the CLI): see ``bootstrap``."""

from __future__ import annotations

from fastapi import FastAPI

from unified_seller_view.bootstrap import bootstrap
from unified_seller_view.settings import Settings
from unified_shared.clock import Clock, system_clock


def create_service_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    return bootstrap(settings or Settings(), clock=clock or system_clock)


__all__ = ["bootstrap", "create_service_app"]
