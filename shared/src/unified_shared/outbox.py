"""Outbox relay: publishes event-store rows to Kafka in transaction order.

Rows are read in (txid, position) order and only from transactions older than every transaction still
running (``pg_snapshot_xmin``): a transaction that commits late can never have a row behind the cursor,
so nothing is skipped, and a stream's versions go out in order (see eventstore). Pipelined: while one
read batch waits for its acknowledgements the next is read and sent (up to ``max_in_flight``); records go
out with ``send_batch``, one record batch per partition, in order; the cursor is saved in order, each time
after a whole read batch is acknowledged. A key always maps to one partition, so per-key order holds.
A crash between sending and saving republishes rows on restart (duplicates, never loss); consumers
deduplicate on ``ce_id``.

A row that cannot be published (no valid envelope, too large, topic refused) is retried a bounded number
of times, then quarantined (``outbox_quarantine``): later rows of its partition key wait behind it, every
other key goes on. ``python -m unified_shared.outbox`` lists, repairs and releases quarantined rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import OutOfOrderSequenceNumber, ProducerFenced

from unified_shared import outbox_quarantine as quarantine
from unified_shared import outbox_reads as reads
from unified_shared.envelope import Envelope
from unified_shared.eventstore import StoredEvent
from unified_shared.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, OUTBOX_PUBLISHED
from unified_shared.outbox_keys import BlockedKeys
from unified_shared.outbox_send import (
    ROW_FAULTS,
    Batches,
    Cursor,
    InFlight,
    Outgoing,
    RelayStatus,
)
from unified_shared.tracing import handed_on

log = logging.getLogger(__name__)


class _RowRetry(Exception):
    """A row failed and has attempts left: restart from the saved position after a pause."""


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        *,
        source: str,
        name: str = "default",
        batch_size: int = 500,
        poll_interval_s: float = 0.2,
        max_in_flight: int = 4,
        max_row_attempts: int = 3,
        degraded_after_s: float = 30.0,
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        self.pool = pool
        self.producer = producer
        # After a long broker outage aiokafka's idempotent producer can fail for good (its sequence numbers
        # ran on for batches that expired: OutOfOrderSequenceNumber stops its sender); the relay then
        # replaces it with one from this factory (a new producer id) and goes on from its saved cursor.
        self.producer_factory = producer_factory
        self._own_producer = False
        self.source = source
        self._source = source.encode()
        self.name = name
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.max_in_flight = max_in_flight
        self.max_row_attempts = max_row_attempts
        self.degraded_after_s = degraded_after_s
        self.last_error: str | None = None
        self.degraded = False
        self._wakeup = asyncio.Event()
        self._attempts: dict[int, tuple[int, str]] = {}  # position -> (failed attempts, last reason)
        self._blocked = BlockedKeys(name)
        self._in_flight: deque[InFlight] = deque()
        self._failures = 0
        self._failing_since: float | None = None

    def notify(self) -> None:
        """Wake the relay now (after a command committed events) instead of waiting for the next poll."""
        self._wakeup.set()

    async def cursor(self, conn: asyncpg.Connection) -> Cursor:
        return await reads.cursor(conn, self.name)

    async def position(self, conn: asyncpg.Connection) -> int:
        return (await self.cursor(conn))[1]

    async def save_position(self, conn: asyncpg.Connection, cursor: Cursor) -> None:
        await reads.save_cursor(conn, self.name, cursor)

    # -- status ---------------------------------------------------------------------------------------
    async def status(self) -> RelayStatus:
        """Backlog, age of the oldest unpublished event and the quarantine, from the database (the truth
        even while the relay waits inside the producer's retries); updates the metrics and ``degraded``."""
        async with self.pool.acquire() as conn:
            backlog, age = await reads.backlog(conn, self.name)
            held = await quarantine.counts(conn, self.name)
        OUTBOX_BACKLOG.labels(self.name).set(backlog)
        OUTBOX_OLDEST_AGE.labels(self.name).set(age)
        degraded = age > self.degraded_after_s
        if degraded != self.degraded:
            self.degraded = degraded
            if degraded:
                log.warning(
                    "outbox relay degraded: events are not flowing",
                    extra={"relay": self.name, "oldest_unpublished_age_s": round(age, 1), "error": self.last_error},
                )
            else:
                log.info("outbox relay no longer degraded", extra={"relay": self.name})
        return RelayStatus(
            backlog,
            age,
            held.get("failed", 0),
            held.get("held", 0) + held.get("released", 0),
            degraded,
        )

    async def backlog(self) -> int:
        return (await self.status()).backlog

    # -- publishing -----------------------------------------------------------------------------------
    def envelope(self, stored: StoredEvent | Outgoing) -> Envelope:
        return Envelope(
            id=stored.event_id,
            source=self.source,
            type=stored.event_type,
            time=stored.occurred_at,
            subject=stored.stream_id,
            partitionkey=stored.partition_key,
            sequence=stored.version,
            traceparent=handed_on(stored.traceparent, f"publish {stored.event_type}", service=self.source),
        )

    def _headers(self, stored: Outgoing) -> list[tuple[str, bytes]]:
        """``envelope(stored).to_headers()``, without building the envelope (raises for a row that has none)."""
        trace = stored.traceparent
        if trace:
            trace = handed_on(trace, f"publish {stored.event_type}", service=self.source)
        return stored.headers(self._source, trace)

    async def _send(self, stored: Outgoing) -> asyncio.Future[Any]:
        headers = self._headers(stored)  # raises for a row that has no valid envelope
        future: asyncio.Future[Any] = await self.producer.send(
            stored.topic, value=stored.value, key=stored.partition_key.encode(), headers=headers
        )
        return future

    async def _quarantine(self, conn: asyncpg.Connection, stored: Outgoing, reason: str) -> None:
        await self._blocked.fail(conn, stored, reason)
        self._attempts.pop(stored.position, None)

    async def _dispatch(self, conn: asyncpg.Connection, batch: list[Outgoing], start: Cursor, last: Cursor) -> None:
        """Send a batch without waiting for acknowledgements; rows of blocked keys join the quarantine."""
        flight = InFlight(last)
        batches = Batches(self.producer)
        for i, stored in enumerate(batch):
            if stored.partition_key in self._blocked:
                await self._blocked.hold(conn, stored)
                continue
            attempts, reason = self._attempts.get(stored.position, (0, ""))
            if attempts >= self.max_row_attempts:
                await self._quarantine(conn, stored, reason)
                continue
            try:
                headers = self._headers(stored)  # raises for a row that has no valid envelope
                await batches.add(stored, headers, flight)
            except ROW_FAULTS as exc:
                self._attempts[stored.position] = (attempts + 1, repr(exc))
                if attempts + 1 >= self.max_row_attempts:
                    await self._quarantine(conn, stored, repr(exc))
                    continue
                # Settle what went out before this row, then retry it after a pause.
                flight.last = (batch[i - 1].txid, batch[i - 1].position) if i else start
                await batches.flush(flight)
                self._in_flight.append(flight)
                await self._settle_all(conn)
                raise _RowRetry(f"position {stored.position}: {exc!r}") from exc
            flight.rows.append(stored)
        await batches.flush(flight)
        self._in_flight.append(flight)

    async def _settle(self, conn: asyncpg.Connection, flight: InFlight) -> int:
        results = await asyncio.gather(*(f for _, f in flight.futures), return_exceptions=True)
        for (stored, _), result in zip(flight.futures, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, ROW_FAULTS):
                    attempts, _ = self._attempts.get(stored.position, (0, ""))
                    self._attempts[stored.position] = (attempts + 1, repr(result))
                raise result
        await self.save_position(conn, flight.last)
        OUTBOX_PUBLISHED.labels(self.name).inc(len(flight.rows))
        for stored in flight.rows:
            self._attempts.pop(stored.position, None)
        self._recovered()
        return len(flight.rows)

    async def _settle_all(self, conn: asyncpg.Connection) -> int:
        done = 0
        while self._in_flight:
            done += await self._settle(conn, self._in_flight.popleft())
        return done

    async def publish_once(self, *, wait_s: float = 10.0) -> int:
        """One unpipelined pass: read the next batch, send it, wait for every ack, save the cursor.

        Rows committed but still behind a running older transaction (anywhere in the cluster) are waited
        for, up to ``wait_s``: 0 then means nothing committed is left, not "not publishable yet"."""
        async with self.pool.acquire() as conn:
            await self._blocked.drain(conn, self._send, force=True)
            start = await self.cursor(conn)
            deadline = time.monotonic() + wait_s
            while True:
                batch, last = await reads.rows_after(conn, start, self.batch_size)
                if batch or time.monotonic() > deadline or not await reads.held_back(conn, start):
                    break
                await asyncio.sleep(0.02)
            if not batch:
                return 0
            try:
                await self._dispatch(conn, batch, start, last)
                return await self._settle_all(conn)
            finally:
                self._in_flight.clear()

    async def _pump(self) -> None:
        """Read, send and settle continuously: the next batch is read while earlier ones await their acks."""
        async with self.pool.acquire() as conn:
            cursor = await self.cursor(conn)
            try:
                while True:
                    await self._blocked.drain(conn, self._send)
                    batch, last = await reads.rows_after(conn, cursor, self.batch_size)
                    if batch:
                        await self._dispatch(conn, batch, cursor, last)
                        cursor = last
                        while self._in_flight and (
                            self._in_flight[0].done() or len(self._in_flight) >= self.max_in_flight
                        ):
                            await self._settle(conn, self._in_flight.popleft())
                        continue
                    await self._settle_all(conn)
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), timeout=self.poll_interval_s)
            finally:
                self._abandon_in_flight()

    def _abandon_in_flight(self) -> None:
        """Forget unsettled sends (they are sent again from the saved cursor), retrieving their outcome so that
        asyncio does not log "Future exception was never retrieved" for each."""
        for flight in self._in_flight:
            for _, future in flight.futures:
                future.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        self._in_flight.clear()

    async def _replace_producer(self, exc: Exception) -> None:
        if self.producer_factory is None:
            return
        log.warning(
            "outbox relay: the Kafka producer failed for good, starting a new one",
            extra={"relay": self.name, "error": repr(exc)},
        )
        old, self.producer = self.producer, self.producer_factory()
        if self._own_producer:
            with contextlib.suppress(Exception):
                await old.stop()
        self._own_producer = True
        await self.producer.start()

    async def run(self) -> None:
        watchdog = asyncio.create_task(self._watch(), name="outbox-watchdog")
        backoff = 0.5
        try:
            while True:
                try:
                    await self._pump()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # keep relaying after a broker or database outage, or a bad row
                    if self._failing_since is None:  # it had healed since the last failure
                        backoff = 0.5
                    self._failed(exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    if isinstance(exc, (OutOfOrderSequenceNumber, ProducerFenced)):
                        with contextlib.suppress(Exception):
                            await self._replace_producer(exc)
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watchdog
            if self._own_producer:
                with contextlib.suppress(Exception):
                    await self.producer.stop()

    async def _watch(self) -> None:
        """Refresh the status (metrics, degraded state and its log line) while the pump may be stuck."""
        while True:
            await asyncio.sleep(min(5.0, max(0.5, self.degraded_after_s / 4)))
            with contextlib.suppress(Exception):
                await self.status()

    def _failed(self, exc: Exception, retry_in_s: float) -> None:
        """One log line when publishing starts failing (and when it heals), not one per attempt."""
        self.last_error = repr(exc)
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning(
                "outbox relay cannot publish; retrying quietly",
                extra={"relay": self.name, "error": repr(exc), "retry_in_s": retry_in_s},
            )

    def _recovered(self) -> None:
        if self._failing_since is not None:
            log.info(
                "outbox relay publishing again",
                extra={
                    "relay": self.name,
                    "failed_attempts": self._failures,
                    "outage_s": round(time.monotonic() - self._failing_since, 1),
                },
            )
        self.last_error = None
        self._failures = 0
        self._failing_since = None


if __name__ == "__main__":  # python -m unified_shared.outbox: the operator's quarantine commands
    from unified_shared.outbox_cli import main

    raise SystemExit(main())
