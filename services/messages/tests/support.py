"""Helpers for the messages tests: instants, message bodies, events read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from unified_shared.testing import SeenRecord, TopicWatcher

DE, FR, UK, US = "A1PA6795UKMFR9", "A13V1IB3VIYZZH", "A1F83G8C2ARO7P", "ATVPDKIKX0DER"
SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas"


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def message(
    received_at: str, *, marketplace: str = DE, body: str = "Where is my parcel?", **extra: Any
) -> dict[str, Any]:
    return {"marketplace_id": marketplace, "subject": "Delivery", "body": body, "received_at": received_at, **extra}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def events_until_marker(watcher: TopicWatcher, account: UUID, marker_thread: str) -> list[SeenRecord]:
    """Every event of ``account`` published before the marker thread's first event (one key, one
    partition, commit order: once the marker is there, everything committed before it is there)."""
    key = str(account)
    marker = await watcher.collect(
        lambda r: r.key == key and r.value.get("thread_id") == marker_thread, count=1, timeout_s=30
    )
    assert marker, "the marker event never arrived"
    return [r for r in watcher.seen if r.key == key and r.value.get("thread_id") != marker_thread]


def schema_for(ce_type: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMAS / f"{ce_type}.json").read_text())
    return data
