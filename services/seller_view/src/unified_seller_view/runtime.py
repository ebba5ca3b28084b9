"""The seller view's process: the shared ServiceRuntime (pool, migrations, one idempotent consumer of every
topic, health) that also follows the generation pointer, so a rebuild that switched generations is picked
up by the serving process without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import Gauge

from unified_seller_view import summaries
from unified_seller_view.generations import (
    TOPICS,
    Generation,
    ddl_checksum,
    ensure_live_generation,
    live_generation,
    upgrade_generations,
)
from unified_seller_view.handlers import table_for
from unified_seller_view.settings import Settings
from unified_shared.consumer import IdempotentConsumer
from unified_shared.db import SHARED_COMPONENT, apply_migrations, connect
from unified_shared.kafka import make_consumer
from unified_shared.runtime import ConsumerSpec, ServiceRuntime

log = logging.getLogger(__name__)

MIGRATIONS = ("seller_view", "unified_seller_view.migrations")
REBUILD_APPLIED = Gauge("view_rebuild_events_applied", "Records a running rebuild has applied (0: none running)")
REBUILD_TO_APPLY = Gauge("view_rebuild_events_to_apply", "Records a running rebuild has to apply (0: none running)")
REBUILD_ETA = Gauge("view_rebuild_eta_seconds", "Estimated seconds until a running rebuild has caught up")
# Every generation shares one dead-letter scope: a rebuild never dead-letters again what a live one did.
DLQ_SCOPE = "seller_view"


def consumer_spec(gen: Generation) -> ConsumerSpec:
    return ConsumerSpec(gen.consumer_name, TOPICS, handlers=table_for(gen.schema), dead_letter_scope=DLQ_SCOPE)


def generation_consumer(
    settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, gen: Generation, role: str
) -> IdempotentConsumer:
    """The consumer that fills ``gen``, in the Kafka group named after it (not started): the serving process's
    and a rebuild's (``role`` names the client) are the same but for that name."""
    spec = consumer_spec(gen)
    kafka = make_consumer(
        settings.kafka_bootstrap_servers,
        group_id=gen.consumer_name,
        client_id=f"{settings.service_name}-{role}",
        topics=[],
    )
    return IdempotentConsumer(
        pool,
        kafka,
        producer,
        name=gen.consumer_name,
        topics=spec.topics,
        handlers=spec.handlers,
        dead_letter_scope=spec.dead_letter_scope,
    )


class SellerViewRuntime(ServiceRuntime):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, migrations=[MIGRATIONS], publishes=False)
        self.view_settings = settings
        self.generation: Generation | None = None
        self.rebuild_progress: dict[str, Any] | None = None

    async def start(self) -> None:
        s = self.view_settings
        conn = await connect(s.database_url)
        try:
            await apply_migrations(conn, [SHARED_COMPONENT, MIGRATIONS])
            await upgrade_generations(conn)
            for schema in await summaries.fill_contributions(conn):  # generations from before read-model step 005
                log.info("order contributions filled", extra={"schema": schema})
            gen = await ensure_live_generation(conn, s.consumer_base, s.view_origin, s.kafka_bootstrap_servers)
        finally:
            await conn.close()
        if gen.ddl_checksum != ddl_checksum():
            log.warning(
                "the live generation was built from another read model: run `rebuild` to apply the current one",
                extra={"generation": gen.number, "schema": gen.schema},
            )
        self.generation = gen
        self.consumer_spec = consumer_spec(gen)
        # ServiceRuntime names the consumer (and its Kafka group) after settings.consumer_group.
        self.settings = s.model_copy(update={"consumer_group": gen.consumer_name})
        await super().start()
        self._tasks.append(asyncio.create_task(self._follow_pointer(), name="view-pointer"))

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        ok, detail = await super().readiness()
        if self.rebuild_progress is not None:
            detail["rebuild"] = self.rebuild_progress
        return ok, detail

    async def _follow_pointer(self) -> None:
        while True:
            await asyncio.sleep(self.view_settings.view_pointer_poll_s)
            try:
                async with self.pool.acquire() as conn:
                    live = await live_generation(conn)
                    building = await conn.fetchrow(
                        """SELECT generation, progress FROM view_generations WHERE state = 'building'
                           ORDER BY generation DESC LIMIT 1"""
                    )
                self._show_rebuild(building)
                if live is not None and (self.generation is None or live.number != self.generation.number):
                    await self._switch_consumer(live)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following; readiness shows the consumer's own errors
                # collapse: one line when it starts failing (e.g. the database is down), a count when it stops
                log.warning("following the view pointer failed", extra={"error": repr(exc), "collapse": True})

    def _show_rebuild(self, row: asyncpg.Record | None) -> None:
        """A rebuild running anywhere (its progress row) on /metrics and in the health detail."""
        progress = dict(row["progress"] or {}) if row is not None else None
        if row is not None and progress is not None:
            progress["generation"] = row["generation"]
        self.rebuild_progress = progress
        REBUILD_APPLIED.set((progress or {}).get("applied") or 0)
        REBUILD_TO_APPLY.set((progress or {}).get("to_apply") or 0)
        REBUILD_ETA.set((progress or {}).get("eta_s") or 0)

    async def _switch_consumer(self, gen: Generation) -> None:
        """Stop consuming for the retired generation; consume for the new one from its stored offsets."""
        log.info("switching consumer to generation", extra={"generation": gen.number, "schema": gen.schema})
        for task in [t for t in self._tasks if t.get_name() == "consumer"]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self._tasks.remove(task)
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.consumer.stop()
        assert self.producer is not None
        self.consumer = generation_consumer(self.view_settings, self.pool, self.producer, gen, "consumer")
        self.consumer_spec = consumer_spec(gen)
        self.consumer.subscribe()
        await self.consumer.consumer.start()
        self._tasks.append(asyncio.create_task(self.consumer.run(), name="consumer"))
        self.generation = gen
