"""Appends to an account's event stream (the outbox), and the events that end access everywhere."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

import asyncpg

from unified_shared import eventstore
from unified_shared.contracts.identity import SessionRevoked
from unified_shared.events import Event


def stream_id(account_id: UUID) -> str:
    return f"account-{account_id}"


async def append(conn: asyncpg.Connection, account_id: UUID, event: Event) -> None:
    """Append at the stream's current end. The append lock is taken before the version is read, so commands
    that do not lock the account (sign-outs, revocations) never fail on a concurrent append."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", eventstore.APPEND_LOCK)
    sid = stream_id(account_id)
    version = await eventstore.stream_version(conn, sid)
    await eventstore.append(conn, sid, version, [event])


async def sessions_ended(
    conn: asyncpg.Connection, sessions: Iterable[asyncpg.Record], reason: str, at: datetime
) -> int:
    """Publish SessionRevoked for each session just revoked (rows with session_id, user_id, account_id)."""
    count = 0
    for row in sessions:
        event = SessionRevoked(
            account_id=row["account_id"],
            user_id=row["user_id"],
            session_id=row["session_id"],
            reason=reason,
            revoked_at=at,
        )
        await append(conn, row["account_id"], event)
        count += 1
    return count
