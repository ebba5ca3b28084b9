"""Parsing a consumed record: envelope from the headers, the payload against its event type's model, and the
record key against the event's partition key. What fails is poison (dead-lettered with the reason)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from aiokafka import ConsumerRecord
from pydantic import ValidationError

from unified_shared.consumer_apply import ReceivedEvent
from unified_shared.envelope import Envelope, EnvelopeError
from unified_shared.events import model_for


@dataclass(slots=True)
class ParsedRecord:
    """A record as the consumer sees it: its event, or why it is poison, or an unknown type.
    ``key``: the record's identity (its event ID, or without a readable one its place in the log), computed
    once: it is read several times per record in a batch."""

    record: ConsumerRecord[Any, Any]
    key: UUID
    received: ReceivedEvent | None = None
    envelope: Envelope | None = None
    error: str | None = None  # poison: why the record cannot be parsed
    unknown_type: bool = False

    @property
    def outcome(self) -> str:
        return "dead-lettered" if self.error else ("unknown-type" if self.unknown_type else "applied")


def _place_key(record: ConsumerRecord[Any, Any]) -> UUID:
    return uuid5(NAMESPACE_URL, f"kafka:{record.topic}:{record.partition}:{record.offset}")


def parse_record(record: ConsumerRecord[Any, Any]) -> ParsedRecord:
    try:
        envelope = Envelope.from_headers(record.headers or [])
    except EnvelopeError as exc:
        return ParsedRecord(record, _place_key(record), error=f"envelope: {exc}")
    event_id = envelope.id if type(envelope.id) is UUID else UUID(str(envelope.id))
    parsed = ParsedRecord(record, event_id, envelope=envelope)
    model = model_for(envelope.type)
    if model is None:
        parsed.unknown_type = True
        return parsed
    try:
        event = model.model_validate_json(record.value or b"")
    except ValidationError as exc:
        parsed.error = f"schema {envelope.type}: {short_validation(exc)}"
        return parsed
    partition_key = event.partition_key()
    if record.key is not None and record.key.decode(errors="replace") != partition_key:
        parsed.error = f"key {record.key!r} is not the event's partition key {partition_key!r}"
        return parsed
    parsed.received = ReceivedEvent(
        envelope, event, record.topic, record.partition, record.offset, event_key=partition_key
    )
    return parsed


def short_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)
