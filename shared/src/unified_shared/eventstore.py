"""Event store on asyncpg: append with an expected version, read a stream, fold it into an aggregate.

Appends must run inside the caller's transaction, together with the service's own changes: the event
store is also the outbox, so what is committed is exactly what the relay will publish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg

from unified_shared.events import Event, parse_event
from unified_shared.tracing import current_traceparent

# All appends of one database serialize on this lock, held until commit: positions are then drawn in
# commit order, and the relay can never pass a row that a slower transaction commits later (DESIGN 5).
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

    def event(self) -> Event:
        return parse_event(self.event_type, self.payload)


def _row_to_stored(row: asyncpg.Record) -> StoredEvent:
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
    )


async def stream_version(conn: asyncpg.Connection, stream_id: str) -> int:
    value = await conn.fetchval("SELECT max(version) FROM event_store WHERE stream_id = $1", stream_id)
    return int(value or 0)


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
    if not events:
        return []
    traceparent = traceparent or current_traceparent()  # the request's trace continues in the record
    await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
    actual = await stream_version(conn, stream_id)
    if actual != expected_version:
        raise ConcurrencyError(stream_id, expected_version, actual)
    when = occurred_at or datetime.now(UTC)
    rows = []
    for offset, event in enumerate(events, start=1):
        try:
            row = await conn.fetchrow(
                """INSERT INTO event_store
                       (event_id, stream_id, version, event_type, topic, partition_key, payload,
                        occurred_at, traceparent)
                   VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
                   RETURNING *""",
                uuid4(),
                stream_id,
                expected_version + offset,
                event.ce_type(),
                event.TOPIC,
                event.partition_key(),
                event.model_dump(mode="json"),
                when,
                traceparent,
            )
        except asyncpg.UniqueViolationError:
            # The transaction is aborted now, so the actual version cannot be read here.
            raise ConcurrencyError(stream_id, expected_version, -1) from None
        rows.append(_row_to_stored(row))
    return rows


async def read_stream(conn: asyncpg.Connection, stream_id: str, after_version: int = 0) -> list[StoredEvent]:
    rows = await conn.fetch(
        "SELECT * FROM event_store WHERE stream_id = $1 AND version > $2 ORDER BY version", stream_id, after_version
    )
    return [_row_to_stored(r) for r in rows]


S = TypeVar("S")


async def load(conn: asyncpg.Connection, stream_id: str, fold: Callable[[S, Event], S], initial: S) -> tuple[S, int]:
    """Rebuild an aggregate by folding its events; returns the state and the version to expect next."""
    state = initial
    version = 0
    for stored in await read_stream(conn, stream_id):
        state = fold(state, stored.event())
        version = stored.version
    return state, version
