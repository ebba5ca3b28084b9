"""The billing service's composition root: the only place its parts are built and wired.

runtime (pool, migrations, outbox relay, the consumer of subscriptions, FX rates and accounts) -> ``Billing``
(its commands and queries, over the runtime's pool, reading ``clock``) -> the API router; once started, the
held-periods gauge and the scheduler. Tests call ``bootstrap`` with their settings and clock."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI

from unified_billing.api import router
from unified_billing.handlers import Billing, handler_table
from unified_billing.scheduler import run_scheduler
from unified_billing.settings import Settings
from unified_shared.clock import Clock, system_clock
from unified_shared.runtime import ConsumerSpec, ServiceRuntime, create_app
from unified_shared.topics import IDENTITY_ACCOUNTS, REGIONS_FX_RATES, REGIONS_SUBSCRIPTIONS

MIGRATIONS = [("billing", "unified_billing.migrations")]
CONSUMED_TOPICS = [REGIONS_SUBSCRIPTIONS, REGIONS_FX_RATES, IDENTITY_ACCOUNTS]


def bootstrap(settings: Settings, *, clock: Clock = system_clock) -> FastAPI:
    runtime = ServiceRuntime(
        settings, migrations=MIGRATIONS, consumer=ConsumerSpec("billing", CONSUMED_TOPICS, handlers=handler_table())
    )
    billing = Billing(settings, lambda: runtime.pool, clock=clock, notify=runtime.notify_relay)
    runtime.on_start(billing.refresh_gauge)
    if settings.scheduler_enabled:
        interval = settings.scheduler_interval_s
        runtime.run_in_background(
            "scheduler", lambda: run_scheduler(billing, interval_s=interval, caught_up=lambda: caught_up(runtime))
        )
    app = create_app(runtime, title="unified-seller billing")
    app.state.handlers = billing
    app.state.settings = settings
    app.include_router(router)
    return app


def billing_over(pool: asyncpg.Pool, settings: Settings, *, clock: Clock = system_clock) -> Billing:
    """Billing's handlers over a pool of one's own (the CLI, tests): nothing runs in the background."""
    return Billing(settings, lambda: pool, clock=clock)


def caught_up(runtime: ServiceRuntime) -> bool:
    """Close only what the consumer has fully seen: polled at least once, no lag on any partition."""
    consumer = runtime.consumer
    if consumer is None:
        return True
    return consumer.last_poll_monotonic is not None and all(lag == 0 for lag in consumer.lag.values())
