"""The one order of an order's events: by (last_update_date, envelope sequence, event ID). Both order paths
(order_batches.py set-based, order_handlers.py event by event) decide with ``newer`` whether an event replaces
what the order row reflects, so the row is the same whatever the batch boundaries, redelivery or a rebuild.
A missing sequence (old records) or a row written before versions were kept ranks lowest among its ties."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

Version = tuple[datetime, int, UUID]

_NO_SEQUENCE = -1
_NO_EVENT = UUID(int=0)


def version(at: datetime, sequence: int | None, event_id: UUID | None) -> Version:
    return (at, _NO_SEQUENCE if sequence is None else sequence, _NO_EVENT if event_id is None else event_id)


def of_row(row: Any) -> Version:
    """The version an order row reflects (its last_update_date, version_sequence, version_event_id)."""
    return version(row["last_update_date"], row["version_sequence"], row["version_event_id"])


def newer(candidate: Version, current: Version) -> bool:
    """Whether an event of version ``candidate`` replaces an order at ``current`` (equal: the same event)."""
    return candidate > current
