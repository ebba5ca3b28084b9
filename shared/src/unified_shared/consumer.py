"""Idempotent consumer: apply a batch of events and record their IDs and offsets in one transaction.

- Exactly-once effects: each event's ``ce_id`` is recorded with the change it caused; a redelivered or
  replayed event is skipped. Offsets live in PostgreSQL too and are authoritative: on assignment the
  consumer seeks to them. Kafka's committed offsets follow, after the database commit.
- A record that cannot be parsed or fails its schema goes to ``<topic>.dlq`` at once; a handler error is
  retried with backoff (``max_attempts``) and then dead-lettered with its reason. The partition moves on.
- An event type without a registered model is counted and skipped, never fatal.
- Losing the database raises out of the batch without committing anything: the batch is consumed again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from pydantic import ValidationError

from unified_shared.envelope import Envelope, EnvelopeError
from unified_shared.events import Event, model_for
from unified_shared.metrics import CONSUMER_APPLIED, CONSUMER_DLQ, CONSUMER_LAG, CONSUMER_RETRIES

log = logging.getLogger(__name__)

# Errors that mean "the database is unreachable", not "this event is bad": never dead-letter on these.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    ConnectionError,
)


class PoisonEvent(Exception):
    """Raised by a handler for an event that can never be applied: it goes to the DLQ without retries."""


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    envelope: Envelope
    event: Event
    topic: str
    partition: int
    offset: int

    @property
    def event_id(self) -> Any:
        return self.envelope.id


Handler = Callable[[asyncpg.Connection, ReceivedEvent], Awaitable[None]]


@dataclass(slots=True)
class _Parsed:
    record: ConsumerRecord[Any, Any]
    received: ReceivedEvent | None = None
    envelope: Envelope | None = None
    error: str | None = None  # poison: why the record cannot be parsed
    unknown_type: bool = False


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: IdempotentConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.owner.seek_to_stored(list(assigned))


class IdempotentConsumer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        consumer: AIOKafkaConsumer,
        dlq_producer: AIOKafkaProducer,
        *,
        name: str,
        topics: Sequence[str],
        handler: Handler,
        max_attempts: int = 4,
        backoff_base_s: float = 0.1,
        poll_timeout_ms: int = 500,
        max_records: int = 500,
    ) -> None:
        self.pool = pool
        self.consumer = consumer
        self.dlq_producer = dlq_producer
        self.name = name
        self.topics = list(topics)
        self.handler = handler
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.poll_timeout_ms = poll_timeout_ms
        self.max_records = max_records
        self.last_poll_monotonic: float | None = None
        self.last_error: str | None = None
        self.lag: dict[tuple[str, int], int] = {}
        self.applied_batches = 0
        # Monotonic start of the last poll that ended with no lag: everything published before it is applied.
        self.caught_up_as_of: float | None = None

    # -- assignment ---------------------------------------------------------------------------------
    def subscribe(self) -> None:
        self.consumer.subscribe(self.topics, listener=_SeekToStoredOffsets(self))

    async def seek_to_stored(self, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer = $1", self.name
            )
        stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            if offset is not None:
                self.consumer.seek(tp, offset)

    # -- parsing ------------------------------------------------------------------------------------
    def parse(self, record: ConsumerRecord[Any, Any]) -> _Parsed:
        parsed = _Parsed(record)
        try:
            envelope = Envelope.from_headers(record.headers or [])
        except EnvelopeError as exc:
            parsed.error = f"envelope: {exc}"
            return parsed
        parsed.envelope = envelope
        model = model_for(envelope.type)
        if model is None:
            parsed.unknown_type = True
            return parsed
        try:
            event = model.model_validate_json(record.value or b"")
        except ValidationError as exc:
            parsed.error = f"schema {envelope.type}: {_short_validation(exc)}"
            return parsed
        if record.key is not None and record.key.decode(errors="replace") != event.partition_key():
            parsed.error = f"key {record.key!r} is not the event's partition key {event.partition_key()!r}"
            return parsed
        parsed.received = ReceivedEvent(envelope, event, record.topic, record.partition, record.offset)
        return parsed

    # -- applying a batch ---------------------------------------------------------------------------
    async def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> dict[str, int]:
        """Apply records (in partition order) in one transaction; returns counts by outcome."""
        outcomes: dict[str, int] = {}
        parsed = [self.parse(r) for r in records]
        async with self.pool.acquire() as conn, conn.transaction():
            for item in parsed:
                outcome = await self._apply_one(conn, item)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            await self._save_offsets(conn, parsed)
        for outcome, count in outcomes.items():
            CONSUMER_APPLIED.labels(self.name, outcome).inc(count)
        self.applied_batches += 1
        return outcomes

    async def _claim(self, conn: asyncpg.Connection, event_id: Any, outcome: str) -> bool:
        claimed = await conn.fetchval(
            """INSERT INTO consumer_processed_events (consumer, event_id, outcome) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING RETURNING true""",
            self.name,
            event_id,
            outcome,
        )
        return bool(claimed)

    async def _apply_one(self, conn: asyncpg.Connection, item: _Parsed) -> str:
        if item.error is not None:
            # Without a readable ce_id the record's place in the log is its identity: a replay dead-letters
            # it once, not once per pass.
            record = item.record
            key = (
                item.envelope.id
                if item.envelope
                else uuid5(NAMESPACE_URL, f"kafka:{record.topic}:{record.partition}:{record.offset}")
            )
            if not await self._claim(conn, key, "dead-lettered"):
                return "duplicate"
            await self._dead_letter(item.record, item.error)
            return "dead-lettered"
        if item.unknown_type:
            assert item.envelope is not None
            if await self._claim(conn, item.envelope.id, "unknown-type"):
                return "unknown-type"
            return "duplicate"
        received = item.received
        assert received is not None
        last_error = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with conn.transaction():  # savepoint: a failed attempt leaves nothing behind
                    if not await self._claim(conn, received.event_id, "applied"):
                        return "duplicate"
                    await self.handler(conn, received)
                return "applied"
            except _CONNECTION_ERRORS:
                raise
            except PoisonEvent as exc:
                last_error = f"rejected: {exc}"
                break
            except Exception as exc:  # a handler bug or a transient conflict: retry, then dead-letter
                last_error = f"{type(exc).__name__}: {exc}"
                if attempt < self.max_attempts:
                    CONSUMER_RETRIES.labels(self.name).inc()
                    await asyncio.sleep(self.backoff_base_s * 2 ** (attempt - 1))
        log.error(
            "event dead-lettered",
            extra={"consumer": self.name, "event_id": str(received.event_id), "error": last_error},
        )
        await self._claim(conn, received.event_id, "dead-lettered")
        await self._dead_letter(item.record, last_error)
        return "dead-lettered"

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], error: str) -> None:
        headers = [
            *(record.headers or []),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_error", error[:2000].encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        await self.dlq_producer.send_and_wait(
            dlq_topic(record.topic), value=record.value, key=record.key, headers=headers
        )
        CONSUMER_DLQ.labels(self.name, record.topic).inc()

    async def _save_offsets(self, conn: asyncpg.Connection, parsed: list[_Parsed]) -> None:
        latest: dict[tuple[str, int], tuple[int, datetime | None]] = {}
        for item in parsed:
            r = item.record
            when = item.envelope.time if item.envelope else None
            latest[(r.topic, r.partition)] = (r.offset + 1, when)
        for (topic, partition), (next_offset, when) in latest.items():
            await conn.execute(
                """INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, last_event_time)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (consumer, topic, partition) DO UPDATE
                   SET next_offset = EXCLUDED.next_offset,
                       last_event_time = coalesce(EXCLUDED.last_event_time, consumer_offsets.last_event_time),
                       updated_at = now()""",
                self.name,
                topic,
                partition,
                next_offset,
                when,
            )

    # -- the loop -----------------------------------------------------------------------------------
    async def poll_once(self) -> int:
        started = time.monotonic()
        batches = await self.consumer.getmany(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
        self.last_poll_monotonic = time.monotonic()
        records = [rec for tp in sorted(batches, key=lambda t: (t.topic, t.partition)) for rec in batches[tp]]
        if records:
            await self.process(records)
            await self.consumer.commit({tp: recs[-1].offset + 1 for tp, recs in batches.items() if recs})
        await self._update_lag()
        assignment = self.consumer.assignment()
        if assignment and all(self.lag.get((tp.topic, tp.partition)) == 0 for tp in assignment):
            self.caught_up_as_of = started
        return len(records)

    async def _update_lag(self) -> None:
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is None:
                continue
            lag = max(0, high - await self.consumer.position(tp))
            self.lag[(tp.topic, tp.partition)] = lag
            CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(lag)

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self.poll_once()
                self.last_error = None
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Nothing of the failed batch was committed: rewind to the stored offsets and try again.
                self.last_error = repr(exc)
                log.warning("consumer batch failed; rewinding", extra={"consumer": self.name, "error": repr(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                try:
                    await self.rewind()
                except Exception as rewind_exc:  # database still down: try again after the next sleep
                    log.warning("rewind failed", extra={"consumer": self.name, "error": repr(rewind_exc)})

    async def rewind(self) -> None:
        assignment = list(self.consumer.assignment())
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer = $1", self.name
            )
        stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        never_applied = [tp for tp in assignment if (tp.topic, tp.partition) not in stored]
        for tp in assignment:
            if (tp.topic, tp.partition) in stored:
                self.consumer.seek(tp, stored[(tp.topic, tp.partition)])
        if never_applied:
            await self.consumer.seek_to_beginning(*never_applied)


def _short_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)
