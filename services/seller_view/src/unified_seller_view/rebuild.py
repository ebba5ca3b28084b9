"""Rebuild: replay every topic from the view's origin into a fresh generation while the live one keeps
serving, then switch the pointer once the new one has caught up with the topics' end offsets."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import asyncpg
from aiokafka import TopicPartition

from unified_seller_view import generations as gens
from unified_seller_view.runtime import MIGRATIONS, generation_consumer
from unified_seller_view.settings import Settings
from unified_shared.consumer import IdempotentConsumer
from unified_shared.db import SHARED_COMPONENT, apply_migrations, create_pool
from unified_shared.kafka import make_producer
from unified_shared.progress import ProgressReport

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


async def _caught_up(consumer: IdempotentConsumer, target: dict[tuple[str, int], int]) -> bool:
    assigned = {(tp.topic, tp.partition) for tp in consumer.consumer.assignment()}
    if not set(target) <= assigned:
        return False  # the group has not been given every partition yet
    for (topic, partition), end in target.items():
        if await consumer.consumer.position(TopicPartition(topic, partition)) < end:
            return False
    return True


def _records_to_apply(origin: gens.Origin, ends: dict[tuple[str, int], int]) -> int:
    """Records from the origin (offset 0 where it names none) to the ends: an upper bound of what a rebuild
    applies (a log start moved by retention only makes it smaller)."""
    return sum(
        max(0, end - int(origin.get(topic, {}).get(str(partition), 0))) for (topic, partition), end in ends.items()
    )


class _ProgressRecorder:
    """Keeps the rebuild's progress in its generation's row (every few seconds) for the serving instances."""

    def __init__(self, pool: asyncpg.Pool, generation: int, every_s: float = 2.0) -> None:
        self.pool = pool
        self.generation = generation
        self.every_s = every_s
        self.state: dict[str, Any] = {"applied": 0, "to_apply": 0, "eta_s": None}
        self._written = 0.0

    def update(self, done: int, total: int, eta: float | None) -> None:
        self.state = {"applied": done, "to_apply": total, "eta_s": round(eta, 1) if eta is not None else None}

    async def maybe_write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < self.every_s:
            return
        self._written = now
        with contextlib.suppress(Exception):  # progress is information: never fail a rebuild for it
            await self.pool.execute(
                "UPDATE view_generations SET progress = $2::jsonb WHERE generation = $1",
                self.generation,
                {**self.state, "at": datetime.now(UTC).isoformat()},
            )


async def rebuild(
    settings: Settings,
    *,
    keep: int = 1,
    timeout_s: float = 3600.0,
    progress: Progress | None = None,
    stream: TextIO | None = None,
) -> gens.Generation:
    """Build generation n+1 from the origin, switch to it, drop generations older than the ``keep`` most
    recent retired ones. Returns the new live generation. Readers are served by the old one until the switch."""
    say: Progress = progress or log.info
    pool = await create_pool(settings.database_url, max_size=4)
    producer = make_producer(settings.kafka_bootstrap_servers, client_id=f"{settings.service_name}-rebuild")
    await producer.start()
    new: gens.Generation | None = None
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, [SHARED_COMPONENT, MIGRATIONS])
            await gens.upgrade_generations(conn)
            live = await gens.ensure_live_generation(
                conn, settings.consumer_base, settings.view_origin, settings.kafka_bootstrap_servers
            )
            origin = await gens.database_origin(conn) or {}
            new = await gens.create_generation(conn, settings.consumer_base, origin, "building")
        say(f"building generation {new.number} in schema {new.schema} (live: {live.number}, {live.schema})")
        consumer = generation_consumer(settings, pool, producer, new, "rebuild")
        kafka = consumer.consumer
        consumer.subscribe()
        await kafka.start()
        try:
            deadline = time.monotonic() + timeout_s
            target = await gens.end_offsets(settings.kafka_bootstrap_servers)
            to_apply = _records_to_apply(origin, target)
            recorder = _ProgressRecorder(pool, new.number)
            applied = 0
            rounds = 0
            report = ProgressReport(
                f"rebuilding generation {new.number}", total=to_apply, on_update=recorder.update, stream=stream
            )
            with report:
                while True:
                    polled = await consumer.poll_once()
                    applied += polled
                    report.advance(polled)
                    await recorder.maybe_write()
                    if await _caught_up(consumer, target):
                        rounds += 1
                        fresh = await gens.end_offsets(settings.kafka_bootstrap_servers)
                        # Switch once a fresh look at the ends finds nothing new (or after a few chases).
                        if fresh == target or rounds >= 3:
                            break
                        report.total = to_apply = _records_to_apply(origin, fresh)
                        target = fresh
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"generation {new.number} did not catch up within {timeout_s} s")
            await recorder.maybe_write(force=True)
            say(f"generation {new.number} caught up: {applied} records replayed")
        finally:
            with contextlib.suppress(Exception):
                await kafka.stop()  # leave the group: the serving process takes over this consumer name
    except BaseException:
        if new is not None:
            with contextlib.suppress(Exception):
                async with pool.acquire() as conn:
                    await conn.execute("UPDATE view_generations SET state = 'failed' WHERE generation = $1", new.number)
        await producer.stop()
        await pool.close()
        raise
    assert new is not None
    try:
        async with pool.acquire() as conn:
            await gens.switch_to(conn, new.number)
            say(f"switched: generation {new.number} ({new.schema}) is live")
            retired = [g for g in await gens.all_generations(conn) if g.state in ("retired", "failed")]
            retired.sort(key=lambda g: g.number, reverse=True)
            for old in retired[keep:]:
                await gens.drop_generation(conn, old)
                say(f"dropped generation {old.number} ({old.schema})")
            result = await gens.generation(conn, new.number)
            assert result is not None
            return result
    finally:
        await producer.stop()
        await pool.close()
