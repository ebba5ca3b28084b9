"""How the outbox relay hands records to Kafka: one record batch per partition (``send_batch``), the
faults that belong to one row rather than to the broker, and the relay's reported status."""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)
from aiokafka.partitioner import DefaultPartitioner

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
class InFlight:
    """A read batch sent and not yet acknowledged: its cursor, its rows and its record batches."""

    last: Cursor
    rows: list[StoredEvent] = field(default_factory=list)
    futures: list[tuple[StoredEvent, asyncio.Future[Any]]] = field(default_factory=list)  # (first row, batch)

    def done(self) -> bool:
        return all(f.done() for _, f in self.futures)


class Batches:
    """One record batch per (topic, partition), submitted with ``send_batch`` when full or flushed. The
    partition is the one ``send`` would choose (the producer's default partitioner over the key)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.partitions: dict[str, list[int]] = {}
        self.open: dict[tuple[str, int], tuple[StoredEvent, Any]] = {}

    async def add(self, stored: StoredEvent, headers: list[tuple[str, bytes]], flight: InFlight) -> None:
        key, value = stored.partition_key.encode(), json_bytes(stored)
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
