"""A runtime that also runs the start-up steps a composition root registers after building it (once the pool,
migrations, relay and consumer are up: load the signing keys, set a gauge). Registering after construction is
what lets the handlers take the runtime's pool without the runtime needing the handlers first (no construction
loop, no wrapped lifespan); long-running tasks go to ``ServiceRuntime.run_in_background``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from unified_shared.config import ServiceSettings
from unified_shared.runtime import ConsumerSpec, ServiceRuntime

Step = Callable[[], Awaitable[object]]


class StartupRuntime(ServiceRuntime):
    """``ServiceRuntime`` plus ``on_start`` steps, run in order at the end of ``start``."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations: Sequence[tuple[str, str]],
        publishes: bool = True,
        consumer: ConsumerSpec | None = None,
    ) -> None:
        super().__init__(settings, migrations=migrations, publishes=publishes, consumer=consumer)
        self._steps: list[Step] = []

    def on_start(self, step: Step) -> None:
        self._steps.append(step)

    async def start(self) -> None:
        await super().start()
        for step in self._steps:
            await step()
