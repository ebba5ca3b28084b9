"""Idempotent consumer: apply a batch of events and record their IDs and offsets in one transaction.

- Exactly-once effects: one statement claims a batch's event IDs (``INSERT ... SELECT unnest ... ON CONFLICT
  DO NOTHING RETURNING``); only the newly claimed events are applied, by the handler table
  (``consumer_apply``: each handler gets its types' events at once and applies them set-based). Offsets live
  in PostgreSQL too and are authoritative: on assignment the consumer seeks to them. Kafka's committed offsets
  follow, after the database commit.
- A poll takes up to ``max_records`` per assigned partition; each partition's records are applied by a task
  of their own (its own connection, a transaction per batch of at most ``max_records``), concurrently; order
  within a partition is kept.
- A batch is applied without a savepoint. When it fails, its transaction is rolled back and the batch is
  applied again in a new one, event by event, each in a savepoint: a failing event is retried
  with backoff (``max_attempts``) and then dead-lettered with its reason, the rest applied. A record that
  cannot be parsed or fails its schema is dead-lettered at once. Dead letters are recorded in the batch's
  transaction and sent after it commits (``dead_letters``): never twice, never for a batch rolled back.
- Handlers hold only transaction-scoped state (``SET LOCAL``, ``pg_advisory_xact_lock``): a batch's connection
  goes back to the pool without the reset query (``db.session_free``).
- An event type without a registered model is counted and skipped, never fatal.
- Losing the database, a deadlock or a serialization failure raises out of the batch without committing
  anything: the batch is consumed again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from opentelemetry.trace import SpanKind

from unified_shared import consumer_claims, consumer_offsets, db, dead_letters
from unified_shared.consumer_apply import (
    Apply,
    BatchHandler,
    Handler,
    HandlerTable,
    PoisonEvent,
    ReceivedEvent,
    per_event,
)
from unified_shared.consumer_fallback import BatchFailed, apply_at_once, apply_one_by_one
from unified_shared.consumer_records import ParsedRecord, parse_record
from unified_shared.dead_letters import DeadLetter, dlq_topic
from unified_shared.metrics import CONSUMER_APPLIED, CONSUMER_LAG, CONSUMER_LAST_FETCH_AGE
from unified_shared.retry import retry_forever
from unified_shared.tracing import record_spans

__all__ = [
    "Apply",
    "BatchHandler",
    "Handler",
    "HandlerTable",
    "IdempotentConsumer",
    "PoisonEvent",
    "ReceivedEvent",
    "dlq_topic",
    "per_event",
]

log = logging.getLogger(__name__)

# Without a fetch answered for this long the consumer reports itself unable to fetch (degraded).
FETCH_STALE_S = 15.0


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
        handler: Handler | None = None,
        handlers: HandlerTable | None = None,
        dead_letter_scope: str | None = None,
        max_attempts: int = 4,
        backoff_base_s: float = 0.1,
        poll_timeout_ms: int = 500,
        max_records: int = 1000,
        max_concurrency: int = 4,
    ) -> None:
        if (handler is None) == (handlers is None):
            raise ValueError("give exactly one of handler (per event) or handlers (a table)")
        self.pool = pool
        self.consumer = consumer
        self.dlq_producer = dlq_producer
        self.name = name
        self.topics = list(topics)
        self.table = handlers if handlers is not None else HandlerTable.of(handler)  # type: ignore[arg-type]
        self.dead_letter_scope = dead_letter_scope or name
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
        self.applied_events = 0
        self._slots = asyncio.Semaphore(max_concurrency)  # partitions applied at once (pool connections)
        self._started = time.monotonic()
        self._last_fetch_ms: int | None = None
        self._failures = 0  # consecutive failed polls (logged on the first and on recovery)
        # Set by a failed poll, cleared only by a rewind that succeeded: until then the fetch position may be
        # past records that were never applied, so nothing is polled.
        self._rewind_pending = False
        self._letters_pending = True  # dead letters recorded but maybe unsent (a crash, a failed send)
        CONSUMER_LAST_FETCH_AGE.labels(name).set_function(self.last_fetch_age_s)

    # -- assignment ---------------------------------------------------------------------------------
    def subscribe(self) -> None:
        self.consumer.subscribe(self.topics, listener=_SeekToStoredOffsets(self))

    async def _stored_offsets(self) -> dict[tuple[str, int], int]:
        return await consumer_offsets.stored(self.pool, self.name)

    async def seek_to_stored(self, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        stored = await self._stored_offsets()
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            if offset is not None:
                self.consumer.seek(tp, offset)

    # -- parsing ------------------------------------------------------------------------------------
    def parse(self, record: ConsumerRecord[Any, Any]) -> ParsedRecord:
        return parse_record(record)

    # -- applying a batch ---------------------------------------------------------------------------
    async def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> dict[str, int]:
        """Apply records, each partition's in its own task and transaction; returns counts by outcome."""
        by_partition: dict[tuple[str, int], list[ConsumerRecord[Any, Any]]] = {}
        for r in records:
            by_partition.setdefault((r.topic, r.partition), []).append(r)
        # Every partition's task ends before a failure is raised: a rewind must never race a commit.
        results = await asyncio.gather(
            *(self._process_partition(recs) for recs in by_partition.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        outcomes: dict[str, int] = {}
        for result in results:
            assert not isinstance(result, BaseException)
            for outcome, count in result.items():
                outcomes[outcome] = outcomes.get(outcome, 0) + count
        return outcomes

    async def _process_partition(self, records: Sequence[ConsumerRecord[Any, Any]]) -> dict[str, int]:
        """One partition's records, in batches of at most ``max_records``, one after the other (its order)."""
        outcomes: dict[str, int] = {}
        for start in range(0, len(records), self.max_records):
            async with self._slots:
                done = await self._apply_partition(records[start : start + self.max_records])
            for outcome, count in done.items():
                outcomes[outcome] = outcomes.get(outcome, 0) + count
        return outcomes

    async def _apply_partition(self, records: Sequence[ConsumerRecord[Any, Any]]) -> dict[str, int]:
        started_ns = time.time_ns()
        parsed = [self.parse(r) for r in records]
        try:
            outcomes, new_letters = await self._apply_parsed(parsed, one_by_one=False)
        except BatchFailed:
            outcomes, new_letters = await self._apply_parsed(parsed, one_by_one=True)
        record_spans(
            ((f"consume {item.envelope.type}", item.envelope.traceparent) for item in parsed if item.envelope),
            service=self.name,
            kind=SpanKind.CONSUMER,
            start_ns=started_ns,
            end_ns=time.time_ns(),
        )
        for outcome, count in outcomes.items():
            CONSUMER_APPLIED.labels(self.name, outcome).inc(count)
        self.applied_batches += 1
        self.applied_events += len(parsed)
        if new_letters:
            dead_letters.log_recorded(self.name, new_letters)
            self._letters_pending = True
            await self._flush_dead_letters()
        return outcomes

    async def _apply_parsed(
        self, parsed: list[ParsedRecord], *, one_by_one: bool
    ) -> tuple[dict[str, int], list[DeadLetter]]:
        """One transaction: claim, apply (the batch at once, or ``one_by_one`` after it failed), dead letters,
        offsets. Returns the outcomes and the dead letters recorded for the first time."""
        outcomes: dict[str, int] = {}
        letters: list[DeadLetter] = []
        # session-free: a batch only holds transaction-scoped state (SET LOCAL, xact locks), so the connection
        # goes back without the pool's reset query (one round trip fewer per batch)
        async with db.session_free(self.pool) as conn, conn.transaction():
            claimed = await self._claim_batch(conn, parsed)
            fresh: list[ParsedRecord] = []
            seen: set[UUID] = set()
            for item in parsed:
                # a second copy in the same batch is a duplicate too
                if item.key in seen or (claimed is not None and item.key not in claimed):
                    outcomes["duplicate"] = outcomes.get("duplicate", 0) + 1
                else:
                    seen.add(item.key)
                    fresh.append(item)
            for item in fresh:
                if item.error is not None:
                    letters.append(self._letter(item, item.error))
            to_apply = [item.received for item in fresh if item.received is not None]
            failed = await self._apply(conn, to_apply, one_by_one) if to_apply else {}
            for item in fresh:
                reason = failed.get(item.key)
                if reason is not None:
                    letters.append(self._letter(item, reason))
                outcome = "dead-lettered" if reason is not None else item.outcome
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if failed:
                await consumer_claims.mark_dead_lettered(conn, self.name, list(failed))
            new_letters = await dead_letters.record(conn, self.dead_letter_scope, self.name, letters)
            await self._save_offsets(conn, parsed)
        return outcomes, new_letters

    async def _flush_dead_letters(self) -> None:
        """Send recorded dead letters; on failure they stay recorded and are sent after a later poll."""
        try:
            await dead_letters.flush(self.pool, self.dlq_producer, self.dead_letter_scope, self.name)
            self._letters_pending = False
        except Exception as exc:
            log.warning("sending dead letters failed; retried later", extra={"consumer": self.name, "error": repr(exc)})

    def _letter(self, item: ParsedRecord, reason: str) -> DeadLetter:
        return DeadLetter(item.record, item.key, str(item.envelope.id) if item.envelope else None, reason)

    async def _claim_batch(self, conn: asyncpg.Connection, parsed: list[ParsedRecord]) -> set[UUID] | None:
        return await consumer_claims.claim(conn, self.name, [item.key for item in parsed], [i.outcome for i in parsed])

    async def _apply(self, conn: asyncpg.Connection, events: list[ReceivedEvent], one_by_one: bool) -> dict[UUID, str]:
        """{event ID: reason} of the events given up (``consumer_fallback``)."""
        if not one_by_one:
            await apply_at_once(conn, self.table, events, self.name)
            return {}
        return await apply_one_by_one(
            conn,
            self.table,
            events,
            self.name,
            max_attempts=self.max_attempts,
            backoff_base_s=self.backoff_base_s,
        )

    async def _save_offsets(self, conn: asyncpg.Connection, parsed: list[ParsedRecord]) -> None:
        await consumer_offsets.save(
            conn, self.name, [(item.record, item.envelope.time if item.envelope else None) for item in parsed]
        )

    # -- the loop -----------------------------------------------------------------------------------
    async def poll_once(self) -> int:
        started = time.monotonic()
        # Up to max_records per assigned partition: every partition with records waiting gets its batch in
        # this poll, applied concurrently (one task each), instead of one or two partitions per poll.
        partitions = max(1, len(self.consumer.assignment()))
        batches = await self.consumer.getmany(
            timeout_ms=self.poll_timeout_ms, max_records=self.max_records * partitions
        )
        self.last_poll_monotonic = time.monotonic()
        self._note_fetch()
        records = [rec for tp in sorted(batches, key=lambda t: (t.topic, t.partition)) for rec in batches[tp]]
        if records:
            await self.process(records)
            await self.consumer.commit({tp: recs[-1].offset + 1 for tp, recs in batches.items() if recs})
        await self._update_lag()
        assignment = self.consumer.assignment()
        if assignment and all(self.lag.get((tp.topic, tp.partition)) == 0 for tp in assignment):
            self.caught_up_as_of = started
        return len(records)

    def _note_fetch(self) -> None:
        for tp in self.consumer.assignment():
            try:
                stamp = self.consumer.last_poll_timestamp(tp)
            except AssertionError:  # revoked meanwhile
                continue
            if stamp is not None and (self._last_fetch_ms is None or stamp > self._last_fetch_ms):
                self._last_fetch_ms = stamp

    def last_fetch_age_s(self) -> float:
        """Seconds since a fetch was last answered by the broker (since start when none was yet)."""
        if self._last_fetch_ms is None:
            return time.monotonic() - self._started
        return max(0.0, time.time() - self._last_fetch_ms / 1000)

    def fetching(self) -> bool:
        """False while the broker has answered no fetch for FETCH_STALE_S: events are not flowing."""
        return self.last_fetch_age_s() < FETCH_STALE_S

    async def _update_lag(self) -> None:
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is None:
                continue
            lag = max(0, high - await self.consumer.position(tp))
            self.lag[(tp.topic, tp.partition)] = lag
            CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(lag)

    async def run(self) -> None:
        await retry_forever(self._attempt, self._attempt_failed)

    async def _attempt(self) -> None:
        if self._rewind_pending:
            await self.rewind()
            self._rewind_pending = False
        if self._letters_pending:
            await self._flush_dead_letters()
        await self.poll_once()
        if self._failures:
            log.info("consumer recovered", extra={"consumer": self.name, "failed_attempts": self._failures})
        self._failures = 0
        self.last_error = None

    async def _attempt_failed(self, exc: Exception) -> None:
        # The failed batch may not be committed: rewind to the stored offsets and try again.
        # Logged once per streak (state change), not once per attempt.
        self.last_error = repr(exc)
        if self._failures == 0:
            log.warning(
                "consumer batch failed; rewinding and retrying until it succeeds",
                extra={"consumer": self.name, "error": repr(exc)},
            )
        self._failures += 1
        self._rewind_pending = True  # the next attempt starts with a rewind (repeated until it works)

    async def rewind(self) -> None:
        assignment = list(self.consumer.assignment())
        stored = await self._stored_offsets()
        never_applied = [tp for tp in assignment if (tp.topic, tp.partition) not in stored]
        for tp in assignment:
            if (tp.topic, tp.partition) in stored:
                self.consumer.seek(tp, stored[(tp.topic, tp.partition)])
        if never_applied:
            await self.consumer.seek_to_beginning(*never_applied)
