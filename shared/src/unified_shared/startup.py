"""A runtime that also runs what a composition root registers after building it: start-up steps (after the pool,
migrations, relay and consumer are up; e.g. load keys, set a gauge) and background tasks (e.g. a scheduler).
Registering after construction is what lets the handlers take the runtime's pool without the runtime needing
the handlers first (no construction loop, no wrapped lifespan)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from unified_shared.config import ServiceSettings
from unified_shared.runtime import ConsumerSpec, ServiceRuntime

Step = Callable[[], Awaitable[object]]
Task = Callable[[], Awaitable[None]]


class StartupRuntime(ServiceRuntime):
    """``ServiceRuntime`` plus ``on_start`` steps, run in order, and ``background`` tasks, cancelled on stop."""

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
        self._background: list[tuple[str, Task]] = []

    def on_start(self, step: Step) -> None:
        self._steps.append(step)

    def background(self, name: str, task: Task) -> None:
        self._background.append((name, task))

    async def start(self) -> None:
        await super().start()
        for step in self._steps:
            await step()
        for name, task in self._background:
            self._tasks.append(asyncio.create_task(_run(task), name=name))


async def _run(task: Task) -> None:
    await task()
