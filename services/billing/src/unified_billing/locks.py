"""Billing's advisory locks. A close holds (account, period) exclusively and the account's facts lock shared,
from before it reads the facts until it commits; the consumer takes the facts lock exclusively after recording
a batch's facts and before marking closed periods dirty. So a fact is either read by a close or marks its
committed period dirty; it can never fall between a close's read and its commit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from uuid import UUID

import asyncpg

from unified_billing.domain import Period

CLOSE_LOCK_CLASS = 0x0B111  # advisory lock namespace of (account, period) closes
FACTS_LOCK_CLASS = 0x0B112  # advisory lock namespace of an account's facts (closes shared, consumer exclusive)


def close_lock_key(account_id: UUID, period: Period) -> int:
    digest = hashlib.sha256(f"{account_id}:{period}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def account_lock_key(account_id: UUID) -> int:
    return int.from_bytes(account_id.bytes[:4], "big", signed=True)


async def lock_for_close(conn: asyncpg.Connection, account_id: UUID, period: Period, *, timeout_s: float) -> bool:
    """Take a close's locks, waiting at most ``timeout_s`` (False: not free in time, nothing taken). The
    bound applies to the locks only; the rest of the transaction waits as usual."""
    timeout_ms = max(1, round(timeout_s * 1000))
    await conn.execute(f"SET LOCAL lock_timeout = {timeout_ms}")
    try:
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1::int, $2::int)", CLOSE_LOCK_CLASS, close_lock_key(account_id, period)
        )
        # Shared with other closes of the account, exclusive with the consumer recording its facts.
        await conn.execute(
            "SELECT pg_advisory_xact_lock_shared($1::int, $2::int)", FACTS_LOCK_CLASS, account_lock_key(account_id)
        )
    except asyncpg.LockNotAvailableError:
        return False
    await conn.execute("SET LOCAL lock_timeout = DEFAULT")
    return True


async def lock_facts(conn: asyncpg.Connection, accounts: Iterable[UUID]) -> None:
    """The consumer's exclusive facts locks, in key order (no deadlock between consumers)."""
    for account_id in sorted(accounts, key=account_lock_key):
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1::int, $2::int)", FACTS_LOCK_CLASS, account_lock_key(account_id)
        )
