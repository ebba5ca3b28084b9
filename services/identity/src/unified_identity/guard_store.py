"""SQL for what guards the service against abuse and unproven claims: the sign-in and registration throttles
and e-mail verification links. Every function runs on the caller's connection."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias
from uuid import UUID

import asyncpg

Row: TypeAlias = asyncpg.Record


# -- sign-in and registration throttles ---------------------------------------------------------------------
async def lock_signin(conn: asyncpg.Connection, email: str, address: str) -> None:
    """Attempts for one email, and from one address, are serialised across processes, so no count can be raced
    past (always in this order: email, then address)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('signin:' || $1, 0))", email)
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('signin-from:' || $1, 0))", address)


async def forget_failures_before(conn: asyncpg.Connection, since: datetime) -> None:
    await conn.execute("DELETE FROM signin_failures WHERE failed_at <= $1", since)


async def failures(
    conn: asyncpg.Connection,
    since: datetime,
    *,
    email: str | None = None,
    address: str | None = None,
    client_id: str | None = None,
) -> list[datetime]:
    """Failed sign-ins after ``since`` matching every given criterion."""
    rows = await conn.fetch(
        """SELECT failed_at FROM signin_failures
           WHERE failed_at > $1 AND ($2::text IS NULL OR email = $2) AND ($3::text IS NULL OR address = $3)
             AND ($4::text IS NULL OR client_id = $4)
           ORDER BY failed_at""",
        since,
        email,
        address,
        client_id,
    )
    return [r["failed_at"] for r in rows]


async def add_failure(conn: asyncpg.Connection, email: str, address: str, client_id: str | None, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO signin_failures (email, address, client_id, failed_at) VALUES ($1, $2, $3, $4)",
        email,
        address,
        client_id,
        at,
    )


async def clear_failures(conn: asyncpg.Connection, email: str, address: str) -> None:
    """After a good password: the failures of this e-mail from this address (others' stay counted)."""
    await conn.execute("DELETE FROM signin_failures WHERE email = $1 AND address = $2", email, address)


async def registrations_since(conn: asyncpg.Connection, address: str, since: datetime) -> list[datetime]:
    """Registrations attempted from ``address`` after ``since``, locked per address (older rows dropped)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('register-from:' || $1, 0))", address)
    await conn.execute("DELETE FROM registration_attempts WHERE attempted_at <= $1", since)
    rows = await conn.fetch(
        "SELECT attempted_at FROM registration_attempts WHERE address = $1 ORDER BY attempted_at", address
    )
    return [r["attempted_at"] for r in rows]


async def add_registration(conn: asyncpg.Connection, address: str, at: datetime) -> None:
    await conn.execute("INSERT INTO registration_attempts (address, attempted_at) VALUES ($1, $2)", address, at)


# -- e-mail verification -----------------------------------------------------------------------------------------
async def mark_email_verified(conn: asyncpg.Connection, user_id: UUID, email: str) -> bool:
    """Verified only if the address is still the user's (it may have changed since the mail was sent)."""
    status = await conn.execute(
        "UPDATE users SET email_verified = true WHERE user_id = $1 AND email = $2", user_id, email
    )
    return str(status).endswith(" 1")


async def insert_email_verification(
    conn: asyncpg.Connection,
    token_hash: bytes,
    user_id: UUID,
    email: str,
    *,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO email_verifications (token_hash, user_id, email, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5)""",
        token_hash,
        user_id,
        email,
        created_at,
        expires_at,
    )


async def email_verifications_since(conn: asyncpg.Connection, user_id: UUID, since: datetime) -> int:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('verify:' || $1, 0))", str(user_id))
    value = await conn.fetchval(
        "SELECT count(*) FROM email_verifications WHERE user_id = $1 AND created_at > $2", user_id, since
    )
    return int(value or 0)


async def email_verification_for_update(conn: asyncpg.Connection, token_hash: bytes) -> Row | None:
    return await conn.fetchrow("SELECT * FROM email_verifications WHERE token_hash = $1 FOR UPDATE", token_hash)


async def mark_email_verification_used(conn: asyncpg.Connection, token_hash: bytes, at: datetime) -> None:
    await conn.execute("UPDATE email_verifications SET used_at = $2 WHERE token_hash = $1", token_hash, at)
