"""The FastStream application: one subscriber with an explicit ack policy (MANUAL: never FastStream's
at-most-once default), typed payloads from the platform's contracts, deduplication by ``ce_id`` in the same
transaction as the change, bounded retries of transient errors, and a dead-letter topic of its own.

Offsets are committed only after the change committed; a crash in between redelivers, and the ``ce_id``
record makes the redelivery a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError

from downstream_consumer import ledger
from downstream_consumer.settings import Settings
from unified_shared.envelope import Envelope, EnvelopeError
from unified_shared.events import model_for

log = logging.getLogger("downstream_consumer")


@dataclass
class Counters:
    applied: int = 0
    duplicates: int = 0
    skipped: int = 0
    dead_lettered: list[str] = field(default_factory=list)


class Poison(Exception):
    """A record that can never be applied: it goes to the DLQ, and the partition moves on."""


def decode(headers: list[tuple[str, bytes]], value: bytes | None) -> tuple[str, Any] | None:
    """(ce_id, typed event), or None for an event type this consumer does not know (skipped, not an error)."""
    try:
        envelope = Envelope.from_headers(headers)
    except EnvelopeError as exc:
        raise Poison(f"not a CloudEvent: {exc}") from exc
    model = model_for(envelope.type)
    if model is None:
        return None
    try:
        return str(envelope.id), model.model_validate_json(value or b"")
    except ValidationError as exc:
        raise Poison(f"{envelope.type} does not match its schema: {exc.error_count()} error(s)") from exc


def build(settings: Settings, pool_holder: dict[str, asyncpg.Pool], counters: Counters) -> FastStream:
    broker = KafkaBroker(
        settings.bootstrap_servers,
        security=settings.security(),
        client_id=settings.group_id,
        allow_auto_create_topics=False,
    )

    async def dead_letter(message: KafkaMessage, reason: str) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)
        pool = pool_holder["pool"]
        if await ledger.was_dead_lettered(pool, record.topic, record.partition, record.offset):
            return  # a replay meets a record dead-lettered before: once is enough
        headers = {k: v.decode(errors="replace") for k, v in record.headers}
        headers.update(
            dlq_original_topic=record.topic,
            dlq_original_partition=str(record.partition),
            dlq_original_offset=str(record.offset),
            dlq_error=reason[:2000],
        )
        await broker.publish(record.value or b"", settings.dlq_topic, key=record.key, headers=headers)
        await ledger.mark_dead_lettered(pool, record.topic, record.partition, record.offset, reason)
        counters.dead_lettered.append(headers.get("ce_id", f"{record.topic}/{record.partition}/{record.offset}"))
        log.warning(
            "dead-lettered %s/%d@%d: %s", record.topic, record.partition, record.offset, reason, extra={"dlq": True}
        )

    async def keep_bytes(message: KafkaMessage) -> bytes:
        # Decoding happens in the handler, where a bad record can be dead-lettered: a failure inside
        # FastStream's own JSON decoding would never reach the handler, and a later ack would skip it.
        return message.body

    @broker.subscriber(
        *settings.topics,
        decoder=keep_bytes,
        group_id=settings.group_id,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    async def on_record(body: bytes, message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)
        try:
            decoded = decode(list(record.headers), record.value)
        except Poison as exc:
            await dead_letter(message, str(exc))
            await message.ack()
            return
        if decoded is None:
            counters.skipped += 1
            await message.ack()
            return
        ce_id, event = decoded
        attempt = 0
        while True:
            attempt += 1
            try:
                changed = await ledger.apply_once(pool_holder["pool"], ce_id, event)
                break
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError) as exc:
                # The database is away: never give up on the record, back off (capped) and try again.
                log.warning("database unavailable (%s); retrying %s", exc, ce_id)
                await asyncio.sleep(min(0.2 * 2 ** min(attempt, 5), 5.0))
            except Exception as exc:
                if attempt < settings.max_attempts:
                    await asyncio.sleep(0.05 * attempt)
                    continue
                await dead_letter(message, f"{type(exc).__name__}: {exc}")
                await message.ack()
                return
        if changed:
            counters.applied += 1
        else:
            counters.duplicates += 1
        await message.ack()

    app = FastStream(broker)

    @app.on_startup
    async def open_database() -> None:
        pool_holder["pool"] = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
        await ledger.migrate(pool_holder["pool"])

    @app.after_shutdown
    async def close_database() -> None:
        await pool_holder["pool"].close()

    return app
