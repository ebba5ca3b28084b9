"""Event store on asyncpg: append with an expected version, read a stream, fold it into an aggregate.

Appends must run inside the caller's transaction, together with the service's own changes: the event
store is also the outbox, so what is committed is exactly what the relay will publish.

Commands run side by side: appends take no exclusive lock. Each row records its transaction id
(``txid``, migration 003) and the relay publishes in (txid, position) order, only rows of transactions
older than every running one (``pg_snapshot_xmin``), so no row can appear behind its cursor (DESIGN 5).
Commits are not serialized (the commit flushes of concurrent commands group together). A stream's next
version must come from a later transaction than its previous one, so a stream is published in version
order; an append that would break this (a transaction that wrote before it read the stream) is refused
as a ConcurrencyError, and a retry, in a new transaction, succeeds. (Serializing appends on a lock held
until commit also gives commit order, but puts every commit flush of the database in one queue.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg

from unified_shared.events import Event, parse_event
from unified_shared.tracing import current_traceparent

# Appends take this lock shared (they never wait for each other); whoever takes it exclusively (a test
# that stages a race, an import that must see no append until it commits) holds every append back.
APPEND_LOCK = 0x0E7E57


class ConcurrencyError(RuntimeError):
    """Another command appended to the stream first: reload and retry, or answer 409."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id}: expected version {expected}, found {actual}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, slots=True)
class StoredEvent:
    position: int
    event_id: UUID
    stream_id: str
    version: int
    event_type: str
    topic: str
    partition_key: str
    payload: dict[str, Any]
    occurred_at: datetime
    traceparent: str | None
    txid: int = 0  # the writing transaction: the relay publishes in (txid, position) order

    def event(self) -> Event:
        return parse_event(self.event_type, self.payload)


@dataclass(frozen=True, slots=True)
class StreamAppend:
    """Events for one stream, after ``expected_version`` (0 for a new stream); ``occurred_at`` is one
    instant for all of them or one per event (default: now); ``traceparent`` likewise (default: the append's,
    else the current trace's), for a command that appends what several requests caused."""

    stream_id: str
    expected_version: int
    events: Sequence[Event]
    occurred_at: datetime | Sequence[datetime] | None = None
    traceparent: str | Sequence[str | None] | None = None

    def occurred(self, index: int, default: datetime) -> datetime:
        if self.occurred_at is None:
            return default
        value = self.occurred_at if isinstance(self.occurred_at, datetime) else self.occurred_at[index]
        return check_instant(value)

    def trace(self, index: int, default: str | None) -> str | None:
        value = self.traceparent if isinstance(self.traceparent, str | None) else self.traceparent[index]
        return value or default


# PostgreSQL keeps far wider instants, but asyncpg writes year 1 and 9999 extremes as -infinity/infinity,
# which come back without a timezone and can never be published (issue 11): refuse them at the source.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def check_instant(value: datetime) -> datetime:
    """An event's occurred_at: timezone-aware and within EARLIEST .. LATEST (ValueError otherwise)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"occurred_at {value.isoformat()} has no timezone")
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"occurred_at {value.isoformat()} is outside {EARLIEST.year}..{LATEST.year}")
    return value


def row_to_stored(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(
        position=row["position"],
        event_id=row["event_id"],
        stream_id=row["stream_id"],
        version=row["version"],
        event_type=row["event_type"],
        topic=row["topic"],
        partition_key=row["partition_key"],
        payload=row["payload"],
        occurred_at=row["occurred_at"],
        traceparent=row["traceparent"],
        txid=int(row.get("txid") or 0),
    )


_row_to_stored = row_to_stored  # the earlier private name


async def stream_version(conn: asyncpg.Connection, stream_id: str) -> int:
    value = await conn.fetchval("SELECT max(version) FROM event_store WHERE stream_id = $1", stream_id)
    return int(value or 0)


# One statement per append, whatever the number of streams and events: the shared append lock (a
# materialized CTE joined to every row), a guard that each stream is at its expected version, written by
# an earlier (or this) transaction (an index probe), and the multi-row insert. A stream that moved on fails
# the unique (stream_id, version) constraint; a stream behind its expected version inserts nothing.
_APPEND_SQL = """
WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared($1::bigint) AS held),
     new AS (
         SELECT * FROM unnest($2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[],
                              $8::text[], $9::timestamptz[], $12::text[])
                       WITH ORDINALITY AS t(event_id, stream_id, version, event_type, topic, partition_key,
                                            payload, occurred_at, traceparent, n)),
     behind AS (
         SELECT 1 FROM unnest($10::text[], $11::int[]) AS e(stream_id, expected)
         WHERE e.expected > 0 AND NOT EXISTS (
             SELECT 1 FROM event_store s
             WHERE s.stream_id = e.stream_id AND s.version = e.expected AND s.txid <= pg_current_xact_id()))
INSERT INTO event_store (event_id, stream_id, version, event_type, topic, partition_key, payload,
                         occurred_at, traceparent)
SELECT new.event_id, new.stream_id, new.version, new.event_type, new.topic, new.partition_key,
       new.payload::jsonb, new.occurred_at, new.traceparent
FROM new CROSS JOIN lock
WHERE NOT EXISTS (SELECT 1 FROM behind)
ORDER BY new.n
RETURNING position, txid
"""


async def append_streams(
    conn: asyncpg.Connection, appends: Sequence[StreamAppend], *, traceparent: str | None = None
) -> list[StoredEvent]:
    """Append to many streams in one statement (positions in the order given), inside the caller's transaction.

    Raises ConcurrencyError when a stream is not at its expected version; the transaction must then roll back.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("append() must run inside a transaction")
    streams = [a.stream_id for a in appends if a.events]
    if len(set(streams)) != len(streams):
        raise ValueError("one StreamAppend per stream")
    traceparent = traceparent or current_traceparent()  # the request's trace continues in the record
    now = datetime.now(UTC)
    cols: list[list[Any]] = [[] for _ in range(8)]
    traces: list[str | None] = []
    for a in appends:
        if not isinstance(a.occurred_at, datetime | None) and len(a.occurred_at) != len(a.events):
            raise ValueError("one occurred_at per event")
        if not isinstance(a.traceparent, str | None) and len(a.traceparent) != len(a.events):
            raise ValueError("one traceparent per event")
        traces.extend(a.trace(i, traceparent) for i in range(len(a.events)))
        for offset, event in enumerate(a.events, start=1):
            for col, value in zip(
                cols,
                (
                    uuid4(),
                    a.stream_id,
                    a.expected_version + offset,
                    event.ce_type(),
                    event.TOPIC,
                    event.partition_key(),
                    event.model_dump_json(),
                    a.occurred(offset - 1, now),
                ),
                strict=True,
            ):
                col.append(value)
    if not cols[0]:
        return []
    checked = [a for a in appends if a.events]
    try:
        rows = await conn.fetch(
            _APPEND_SQL,
            APPEND_LOCK,
            *cols,
            [a.stream_id for a in checked],
            [a.expected_version for a in checked],
            traces,
        )
    except asyncpg.UniqueViolationError as exc:
        # The transaction is aborted now, so the actual version cannot be read here.
        stream = _stream_of(exc, checked)
        raise ConcurrencyError(stream.stream_id, stream.expected_version, -1) from None
    if not rows:
        for a in checked:
            actual = await stream_version(conn, a.stream_id)
            if actual != a.expected_version:
                raise ConcurrencyError(a.stream_id, a.expected_version, actual)
        raise ConcurrencyError(checked[0].stream_id, checked[0].expected_version, -1)
    # The rows as stored, from what was sent (only position and txid come back: no payload round trip).
    return [
        StoredEvent(
            position, event_id, stream_id, version, event_type, topic, key, json.loads(payload),
            occurred_at.astimezone(UTC), trace, int(txid),
        )
        for (position, txid), event_id, stream_id, version, event_type, topic, key, payload, occurred_at, trace in zip(
            rows, *cols, traces, strict=True
        )
    ]  # fmt: skip


def _stream_of(exc: asyncpg.UniqueViolationError, appends: Sequence[StreamAppend]) -> StreamAppend:
    detail = str(getattr(exc, "detail", "") or "")
    for a in appends:
        if f"({a.stream_id}," in detail:
            return a
    return appends[0]


async def append(
    conn: asyncpg.Connection,
    stream_id: str,
    expected_version: int,
    events: Sequence[Event],
    *,
    occurred_at: datetime | None = None,
    traceparent: str | None = None,
) -> list[StoredEvent]:
    """Append ``events`` after ``expected_version`` (0 for a new stream) inside the caller's transaction.

    Raises ConcurrencyError when the stream has moved on; the caller's transaction must then roll back.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("append() must run inside a transaction")
    return await append_streams(
        conn, [StreamAppend(stream_id, expected_version, events, occurred_at)], traceparent=traceparent
    )


async def read_stream(conn: asyncpg.Connection, stream_id: str, after_version: int = 0) -> list[StoredEvent]:
    rows = await conn.fetch(
        "SELECT * FROM event_store WHERE stream_id = $1 AND version > $2 ORDER BY version", stream_id, after_version
    )
    return [row_to_stored(r) for r in rows]


S = TypeVar("S")


async def load(conn: asyncpg.Connection, stream_id: str, fold: Callable[[S, Event], S], initial: S) -> tuple[S, int]:
    """Rebuild an aggregate by folding its events; returns the state and the version to expect next."""
    state = initial
    version = 0
    for stored in await read_stream(conn, stream_id):
        state = fold(state, stored.event())
        version = stored.version
    return state, version


async def append_batch(
    conn: asyncpg.Connection,
    items: Sequence[tuple[str, int, Event]],
    *,
    occurred_at: datetime | None = None,
) -> int:
    """Append one event to each of many streams, each after its expected version, in one statement.

    For commands that touch thousands of streams at once (a re-pricing after an FX publication): the caller
    must hold what makes its expected versions right (rows locked in its own tables); a stream that moved on
    anyway violates unique (stream_id, version) and raises ConcurrencyError. Returns the number appended.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("append_batch() must run inside a transaction")
    if not items:
        return 0
    await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
    when = occurred_at or datetime.now(UTC)
    try:
        await conn.execute(
            """INSERT INTO event_store
                   (event_id, stream_id, version, event_type, topic, partition_key, payload, occurred_at)
               SELECT e, s, v, t, tp, k, p, $8
               FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
                    AS u(e, s, v, t, tp, k, p)""",
            [uuid4() for _ in items],
            [stream for stream, _, _ in items],
            [expected + 1 for _, expected, _ in items],
            [event.ce_type() for _, _, event in items],
            [event.TOPIC for _, _, event in items],
            [event.partition_key() for _, _, event in items],
            [event.model_dump(mode="json") for _, _, event in items],
            when,
        )
    except asyncpg.UniqueViolationError:
        raise ConcurrencyError("(batch)", -1, -1) from None
    return len(items)
