"""The billing service: runtime (pool, migrations, outbox relay, consumer), scheduler and HTTP API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from fastapi import FastAPI

from unified_billing.api import router
from unified_billing.handlers import Billing, Clock, handler_table
from unified_billing.settings import Settings
from unified_shared.config import ServiceSettings
from unified_shared.runtime import ConsumerSpec, ServiceRuntime, create_app
from unified_shared.topics import IDENTITY_ACCOUNTS, REGIONS_FX_RATES, REGIONS_SUBSCRIPTIONS

log = logging.getLogger(__name__)

MIGRATIONS = [("billing", "unified_billing.migrations")]
CONSUMED_TOPICS = [REGIONS_SUBSCRIPTIONS, REGIONS_FX_RATES, IDENTITY_ACCOUNTS]


class BillingRuntime(ServiceRuntime):
    """The shared runtime plus the scheduler task that closes ended months."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations: Sequence[tuple[str, str]],
        consumer: ConsumerSpec,
        billing: Billing,
        scheduler_enabled: bool,
        scheduler_interval_s: float,
    ) -> None:
        super().__init__(settings, migrations=migrations, publishes=True, consumer=consumer)
        self.billing = billing
        self.scheduler_enabled = scheduler_enabled
        self.scheduler_interval_s = scheduler_interval_s

    async def start(self) -> None:
        await super().start()
        await self.billing.refresh_gauge()
        if self.scheduler_enabled:
            self._tasks.append(asyncio.create_task(self._schedule(), name="scheduler"))

    def consumer_caught_up(self) -> bool:
        """Close only what the consumer has fully seen: polled at least once, no lag on any partition."""
        consumer = self.consumer
        if consumer is None:
            return True
        return consumer.last_poll_monotonic is not None and all(lag == 0 for lag in consumer.lag.values())

    async def _schedule(self) -> None:
        while True:
            await asyncio.sleep(self.scheduler_interval_s)
            if not self.consumer_caught_up():
                continue
            try:
                await self.billing.scheduler_tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database outage: try again at the next tick
                log.warning("billing scheduler tick failed", extra={"error": repr(exc)})


def create_service_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    holder: list[BillingRuntime] = []
    billing = Billing(settings, lambda: holder[0].pool, clock=clock, notify=lambda: holder[0].notify_relay())  # noqa: PLW0108
    runtime = BillingRuntime(
        settings,
        migrations=MIGRATIONS,
        consumer=ConsumerSpec("billing", CONSUMED_TOPICS, handlers=handler_table()),
        billing=billing,
        scheduler_enabled=settings.scheduler_enabled,
        scheduler_interval_s=settings.scheduler_interval_s,
    )
    holder.append(runtime)
    app = create_app(runtime, title="unified-seller billing")
    app.state.billing = billing
    app.state.settings = settings
    app.include_router(router)
    return app
