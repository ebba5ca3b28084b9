"""The billing service's runtime: the shared one (pool, migrations, outbox relay, consumer) plus start-up steps and
background tasks (the held-periods gauge, the scheduler) registered by ``bootstrap``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from unified_shared.config import ServiceSettings
from unified_shared.runtime import ConsumerSpec, ServiceRuntime
from unified_shared.topics import IDENTITY_ACCOUNTS, REGIONS_FX_RATES, REGIONS_SUBSCRIPTIONS

MIGRATIONS = [("billing", "unified_billing.migrations")]
CONSUMED_TOPICS = [REGIONS_SUBSCRIPTIONS, REGIONS_FX_RATES, IDENTITY_ACCOUNTS]


class BillingRuntime(ServiceRuntime):
    """The shared runtime plus start-up steps and background tasks registered by the composition root."""

    def __init__(
        self, settings: ServiceSettings, *, migrations: Sequence[tuple[str, str]], consumer: ConsumerSpec
    ) -> None:
        super().__init__(settings, migrations=migrations, publishes=True, consumer=consumer)
        self._on_start: list[Callable[[], Awaitable[object]]] = []
        self._background: list[tuple[str, Callable[[], Awaitable[None]]]] = []

    def on_start(self, step: Callable[[], Awaitable[object]]) -> None:
        self._on_start.append(step)

    def background(self, name: str, task: Callable[[], Awaitable[None]]) -> None:
        self._background.append((name, task))

    async def start(self) -> None:
        await super().start()
        for step in self._on_start:
            await step()
        for name, task in self._background:
            self._tasks.append(asyncio.create_task(_run(task), name=name))

    def consumer_caught_up(self) -> bool:
        """Polled at least once, no lag on any partition."""
        consumer = self.consumer
        if consumer is None:
            return True
        return consumer.last_poll_monotonic is not None and all(lag == 0 for lag in consumer.lag.values())


async def _run(task: Callable[[], Awaitable[None]]) -> None:
    await task()
