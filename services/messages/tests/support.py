"""Helpers for the messages tests: instants, message bodies, events read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from unified_shared.testing import SeenRecord, TopicWatcher

DE, FR, UK, US = "A1PA6795UKMFR9", "A13V1IB3VIYZZH", "A1F83G8C2ARO7P", "ATVPDKIKX0DER"


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def message(
    received_at: str, *, marketplace: str = DE, body: str = "Where is my parcel?", **extra: Any
) -> dict[str, Any]:
    return {"marketplace_id": marketplace, "subject": "Delivery", "body": body, "received_at": received_at, **extra}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def events_until_marker(watcher: TopicWatcher, account: UUID, marker_thread: str) -> list[SeenRecord]:
    """Every event of ``account`` published before the marker's first event (see ``TopicWatcher.before_marker``)."""
    return await watcher.before_marker(str(account), "thread_id", marker_thread)
