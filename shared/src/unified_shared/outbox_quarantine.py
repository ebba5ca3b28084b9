"""The outbox relay's quarantine: rows it could not publish, the rows of their partition keys that wait
behind them, and what an operator does about them (list, repair, release). SQL only; the relay decides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from unified_shared.eventstore import StoredEvent, row_to_stored

Status = Literal["failed", "held", "released", "skipped"]
# A key is blocked while it has rows in one of these states.
BLOCKING = ("failed", "held", "released")


@dataclass(frozen=True, slots=True)
class Quarantined:
    position: int
    status: Status
    reason: str
    quarantined_at: datetime
    stored: StoredEvent

    def to_json(self) -> dict[str, Any]:
        s = self.stored
        return {
            "position": self.position,
            "status": self.status,
            "reason": self.reason,
            "quarantined_at": self.quarantined_at.isoformat(),
            "event_id": str(s.event_id),
            "event_type": s.event_type,
            "stream_id": s.stream_id,
            "version": s.version,
            "partition_key": s.partition_key,
            "topic": s.topic,
            "occurred_at": str(s.occurred_at),
        }


async def put(conn: asyncpg.Connection, relay: str, stored: StoredEvent, status: Status, reason: str) -> None:
    """Record a row (idempotent: a row already quarantined keeps its state, so a restart changes nothing)."""
    await conn.execute(
        """INSERT INTO outbox_quarantine (relay, position, partition_key, status, reason)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (relay, position) DO NOTHING""",
        relay,
        stored.position,
        stored.partition_key,
        status,
        reason,
    )


async def blocked_keys(conn: asyncpg.Connection, relay: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT partition_key FROM outbox_quarantine WHERE relay = $1 AND status = ANY($2::text[])",
        relay,
        list(BLOCKING),
    )
    return {r["partition_key"] for r in rows}


async def rows(
    conn: asyncpg.Connection, relay: str, *, key: str | None = None, statuses: tuple[str, ...] = BLOCKING
) -> list[Quarantined]:
    """Quarantined rows with their events, in the relay's order (of one key, or all)."""
    found = await conn.fetch(
        """SELECT q.status AS q_status, q.reason AS q_reason, q.quarantined_at AS q_at, e.*
           FROM outbox_quarantine q JOIN event_store e ON e.position = q.position
           WHERE q.relay = $1 AND q.status = ANY($2::text[]) AND ($3::text IS NULL OR q.partition_key = $3)
           ORDER BY e.txid, e.position""",
        relay,
        list(statuses),
        key,
    )
    return [Quarantined(r["position"], r["q_status"], r["q_reason"], r["q_at"], row_to_stored(r)) for r in found]


async def mark(conn: asyncpg.Connection, relay: str, position: int, status: Status, reason: str | None = None) -> bool:
    result = await conn.execute(
        """UPDATE outbox_quarantine SET status = $3, reason = coalesce($4, reason), updated_at = now()
           WHERE relay = $1 AND position = $2""",
        relay,
        position,
        status,
        reason,
    )
    return bool(result.endswith(" 1"))


async def remove(conn: asyncpg.Connection, relay: str, positions: list[int]) -> None:
    await conn.execute(
        "DELETE FROM outbox_quarantine WHERE relay = $1 AND position = ANY($2::bigint[])", relay, positions
    )


async def counts(conn: asyncpg.Connection, relay: str) -> dict[str, int]:
    found = await conn.fetch(
        "SELECT status, count(*) AS n FROM outbox_quarantine WHERE relay = $1 GROUP BY status", relay
    )
    return {r["status"]: int(r["n"]) for r in found}


async def release(conn: asyncpg.Connection, relay: str, position: int, *, skip: bool = False) -> bool:
    """An operator's decision on a failed row: try it again (after a repair), or give it up (``skip``)."""
    result = await conn.execute(
        """UPDATE outbox_quarantine SET status = $3, updated_at = now()
           WHERE relay = $1 AND position = $2 AND status = 'failed'""",
        relay,
        position,
        "skipped" if skip else "released",
    )
    return bool(result.endswith(" 1"))


async def repair_time(conn: asyncpg.Connection, position: int, occurred_at: datetime | None) -> datetime | None:
    """Set a quarantined row's occurred_at (default: when it was recorded); returns the new value."""
    value: datetime | None = await conn.fetchval(
        """UPDATE event_store SET occurred_at = coalesce($2, recorded_at)
           WHERE position = $1 AND EXISTS (SELECT 1 FROM outbox_quarantine q WHERE q.position = $1)
           RETURNING occurred_at""",
        position,
        occurred_at,
    )
    return value
