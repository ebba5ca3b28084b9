"""The billing service's composition root: the only place its parts are built and wired. Tests call it with
their own settings and clock."""

from __future__ import annotations

from fastapi import FastAPI

from unified_billing.api import router
from unified_billing.base import Clock
from unified_billing.handlers import Billing, handler_table
from unified_billing.runtime import CONSUMED_TOPICS, MIGRATIONS, BillingRuntime
from unified_billing.scheduler import run_scheduler
from unified_billing.settings import Settings
from unified_shared.runtime import ConsumerSpec, create_app


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = BillingRuntime(
        settings, migrations=MIGRATIONS, consumer=ConsumerSpec("billing", CONSUMED_TOPICS, handlers=handler_table())
    )
    billing = Billing(settings, lambda: runtime.pool, clock=clock, notify=runtime.notify_relay)
    runtime.on_start(billing.refresh_gauge)
    if settings.scheduler_enabled:
        interval = settings.scheduler_interval_s
        runtime.background(
            "scheduler",
            lambda: run_scheduler(billing, interval_s=interval, caught_up=runtime.consumer_caught_up),
        )
    app = create_app(runtime, title="unified-seller billing")
    app.state.billing = billing
    app.state.settings = settings
    app.include_router(router)
    return app
