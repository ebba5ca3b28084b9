"""How the outbox relay hands records to Kafka: the rows it reads (their JSON payload as stored, never
decoded and encoded again), one record batch per partition (``send_batch``), the faults that belong to one
row rather than to the broker, and the relay's reported status."""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)
from aiokafka.partitioner import DefaultPartitioner

from unified_shared.envelope import CONTENT_TYPE, SPECVERSION, format_time
from unified_shared.eventstore import StoredEvent

Cursor = tuple[int, int]  # (txid, position) of the last row handled

# Faults of one row, not of the broker or the database: retrying the same row cannot help forever.
ROW_FAULTS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    OverflowError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    InvalidTopicError,
)


@dataclass(slots=True)
class Outgoing:
    """An event-store row as the relay publishes it: ``value`` is the payload's JSON text as stored, and
    ``ce_time`` its instant as CloudEvents writes it (formatted by the database; None where it cannot be)."""

    position: int
    txid: int
    event_id: UUID
    stream_id: str
    version: int
    event_type: str
    topic: str
    partition_key: str
    occurred_at: datetime
    traceparent: str | None
    value: bytes
    ce_time: str | None

    @classmethod
    def of(cls, stored: StoredEvent) -> Outgoing:
        try:
            ce_time: str | None = format_time(stored.occurred_at)
        except ValueError:
            ce_time = None
        return cls(
            stored.position,
            stored.txid,
            stored.event_id,
            stored.stream_id,
            stored.version,
            stored.event_type,
            stored.topic,
            stored.partition_key,
            stored.occurred_at,
            stored.traceparent,
            json_bytes(stored),
            ce_time,
        )

    @classmethod
    def of_row(cls, row: asyncpg.Record) -> Outgoing:
        """From a row selected with ``OUTGOING_COLUMNS``."""
        position, txid, event_id, stream, version, event_type, topic, key, occurred_at, trace, payload, ce_time = row
        return cls(
            position, int(txid), event_id, stream, version, event_type, topic, key, occurred_at, trace,
            payload.encode(), ce_time,
        )  # fmt: skip

    def headers(self, source: bytes, traceparent: str | None) -> list[tuple[str, bytes]]:
        """The CloudEvents headers, as ``Envelope.to_headers`` writes them (ValueError for a row without a
        publishable instant: -infinity/infinity)."""
        if self.ce_time is None:
            raise ValueError(f"occurred_at {self.occurred_at!r} cannot be published as a CloudEvents time")
        headers = [
            ("ce_specversion", _SPECVERSION),
            ("ce_id", str(self.event_id).encode()),
            ("ce_source", source),
            ("ce_type", self.event_type.encode()),
            ("ce_time", self.ce_time.encode()),
            ("ce_subject", self.stream_id.encode()),
            ("content-type", _CONTENT_TYPE),
            ("ce_partitionkey", self.partition_key.encode()),
            ("ce_sequence", str(self.version).encode()),
        ]
        if traceparent:
            headers.append(("ce_traceparent", traceparent.encode()))
        return headers


_SPECVERSION, _CONTENT_TYPE = SPECVERSION.encode(), CONTENT_TYPE.encode()

# Column order of Outgoing; jsonb's text form is valid JSON (the relay neither decodes nor re-encodes it),
# and the instant is formatted as format_time does (isoformat in UTC, microseconds only when not zero, Z).
OUTGOING_COLUMNS = """position, txid, event_id, stream_id, version, event_type, topic, partition_key, occurred_at,
    traceparent, payload::text,
    CASE WHEN isfinite(occurred_at) THEN
        to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN extract(microseconds FROM occurred_at)::bigint % 1000000 = 0 THEN ''
                ELSE to_char(occurred_at AT TIME ZONE 'UTC', '.US') END
        || 'Z' END"""


@dataclass(slots=True)
class InFlight:
    """A read batch sent and not yet acknowledged: its cursor, its rows and its record batches."""

    last: Cursor
    rows: list[Outgoing] = field(default_factory=list)
    futures: list[tuple[Outgoing, asyncio.Future[Any]]] = field(default_factory=list)  # (first row, batch)

    def done(self) -> bool:
        return all(f.done() for _, f in self.futures)


class Batches:
    """One record batch per (topic, partition), submitted with ``send_batch`` when full or flushed. The
    partition is the one ``send`` would choose (the producer's default partitioner over the key)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.partitions: dict[str, list[int]] = {}
        self.open: dict[tuple[str, int], tuple[Outgoing, Any]] = {}

    async def add(self, stored: Outgoing, headers: list[tuple[str, bytes]], flight: InFlight) -> None:
        key, value = stored.partition_key.encode(), stored.value
        if stored.topic not in self.partitions:
            self.partitions[stored.topic] = sorted(await self.producer.partitions_for(stored.topic))
        parts = self.partitions[stored.topic]
        slot = (stored.topic, _partition_of(key, tuple(parts)))
        first, builder = self.open.get(slot) or (stored, self.producer.create_batch())
        if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
            if builder.record_count() == 0:
                raise MessageSizeTooLargeError(f"event {stored.event_id} does not fit in a record batch")
            flight.futures.append((first, await self.producer.send_batch(builder, slot[0], partition=slot[1])))
            first, builder = stored, self.producer.create_batch()
            if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise MessageSizeTooLargeError(f"event {stored.event_id} does not fit in a record batch")
        self.open[slot] = (first, builder)

    async def flush(self, flight: InFlight) -> None:
        for (topic, partition), (first, builder) in self.open.items():
            flight.futures.append((first, await self.producer.send_batch(builder, topic, partition=partition)))
        self.open.clear()


@functools.lru_cache(maxsize=65536)
def _partition_of(key: bytes, partitions: tuple[int, ...]) -> int:
    """The default partitioner's choice (murmur2 in pure Python: worth remembering per account)."""
    return int(_PARTITIONER(key, list(partitions), list(partitions)))


_PARTITIONER = DefaultPartitioner()


@dataclass(frozen=True, slots=True)
class RelayStatus:
    backlog: int
    oldest_unpublished_age_s: float
    quarantined: int  # rows that failed
    held: int  # rows waiting behind them
    degraded: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "state": "degraded" if self.degraded else "ok",
            "backlog": self.backlog,
            "oldest_unpublished_age_s": round(self.oldest_unpublished_age_s, 1),
            "quarantined": self.quarantined,
            "held_behind_quarantine": self.held,
        }


def json_bytes(stored: StoredEvent) -> bytes:
    return json.dumps(stored.payload, separators=(",", ":"), sort_keys=True).encode()
