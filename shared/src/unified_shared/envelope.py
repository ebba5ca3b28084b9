"""CloudEvents 1.0, Kafka protocol binding, binary mode (DESIGN section 4).

Attributes travel as ``ce_*`` headers, the payload is the record value, and the Kafka key is the account ID.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


class EnvelopeError(ValueError):
    """The headers are not a valid binary-mode CloudEvent."""


@dataclass(frozen=True, slots=True)
class Envelope:
    id: UUID
    source: str
    type: str
    time: datetime
    subject: str
    partitionkey: str
    sequence: int | None = None
    traceparent: str | None = None
    specversion: str = SPECVERSION
    datacontenttype: str = CONTENT_TYPE

    def to_headers(self) -> list[tuple[str, bytes]]:
        headers: list[tuple[str, bytes]] = [
            ("ce_specversion", self.specversion.encode()),
            ("ce_id", str(self.id).encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", format_time(self.time).encode()),
            ("ce_subject", self.subject.encode()),
            ("content-type", self.datacontenttype.encode()),
            ("ce_partitionkey", self.partitionkey.encode()),
        ]
        if self.sequence is not None:
            headers.append(("ce_sequence", str(self.sequence).encode()))
        if self.traceparent:
            headers.append(("ce_traceparent", self.traceparent.encode()))
        return headers

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, bytes]] | Sequence[tuple[str, bytes]]) -> Envelope:
        values: dict[str, str] = {}
        for key, raw in headers:
            try:
                values[key.lower()] = raw.decode() if isinstance(raw, bytes | bytearray) else str(raw)
            except UnicodeDecodeError as exc:
                raise EnvelopeError(f"header {key} is not UTF-8") from exc
        missing = [
            h
            for h in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "content-type")
            if h not in values
        ]
        if missing:
            raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
        if values["ce_specversion"] != SPECVERSION:
            raise EnvelopeError(f"unsupported ce_specversion {values['ce_specversion']!r}")
        if not values["content-type"].startswith(CONTENT_TYPE):
            raise EnvelopeError(f"unsupported content-type {values['content-type']!r}")
        try:
            event_id = UUID(values["ce_id"])
        except ValueError as exc:
            raise EnvelopeError(f"ce_id {values['ce_id']!r} is not a UUID") from exc
        try:
            time = parse_time(values["ce_time"])
        except ValueError as exc:
            raise EnvelopeError(f"ce_time {values['ce_time']!r} is not RFC 3339") from exc
        sequence = values.get("ce_sequence")
        try:
            seq = int(sequence) if sequence is not None else None
        except ValueError as exc:
            raise EnvelopeError(f"ce_sequence {sequence!r} is not an integer") from exc
        return cls(
            id=event_id,
            source=values["ce_source"],
            type=values["ce_type"],
            time=time,
            subject=values["ce_subject"],
            partitionkey=values.get("ce_partitionkey", ""),
            sequence=seq,
            traceparent=values.get("ce_traceparent"),
            datacontenttype=values["content-type"],
        )


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("CloudEvents time must be timezone-aware")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("no timezone")
    return parsed
