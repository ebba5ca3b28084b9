"""SQL for authorization codes, sessions (refresh-token families), refresh tokens and browser sessions
(single sign-on). Every function runs on the caller's connection, so the handler decides the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeAlias
from uuid import UUID

import asyncpg

from unified_identity.results import AuthorizeRequest, SignedIn

Row: TypeAlias = asyncpg.Record


# -- authorization codes, sessions and refresh tokens ----------------------------------------------------------
async def insert_code(
    conn: asyncpg.Connection,
    code_hash: bytes,
    request: AuthorizeRequest,
    signed_in: SignedIn,
    expires_at: datetime,
) -> None:
    """An authorization code's row: the request it answers and the sign-in it stands for (the code itself is
    only in the redirect; the row keeps its hash)."""
    await conn.execute(
        """INSERT INTO authorization_codes (code_hash, client_id, user_id, account_id, redirect_uri, scope, nonce,
                                            code_challenge, auth_time, expires_at, browser_session_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        code_hash,
        request.client_id,
        signed_in.user_id,
        signed_in.account_id,
        request.redirect_uri,
        request.scope,
        request.nonce,
        request.code_challenge,
        signed_in.auth_time,
        expires_at,
        signed_in.browser_session_id,
    )


async def code_for_update(conn: asyncpg.Connection, code_hash: bytes) -> Row | None:
    return await conn.fetchrow("SELECT * FROM authorization_codes WHERE code_hash = $1 FOR UPDATE", code_hash)


async def mark_code_used(conn: asyncpg.Connection, code_hash: bytes, at: datetime, session_id: UUID | None) -> None:
    await conn.execute(
        "UPDATE authorization_codes SET used_at = $2, session_id = $3 WHERE code_hash = $1", code_hash, at, session_id
    )


async def insert_session(
    conn: asyncpg.Connection,
    *,
    session_id: UUID,
    user_id: UUID,
    account_id: UUID,
    client_id: str,
    scope: str,
    auth_time: datetime,
    browser_session_id: UUID | None,
) -> None:
    await conn.execute(
        """INSERT INTO sessions (session_id, user_id, account_id, client_id, scope, auth_time, browser_session_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        session_id,
        user_id,
        account_id,
        client_id,
        scope,
        auth_time,
        browser_session_id,
    )


async def session(conn: asyncpg.Connection, session_id: UUID) -> Row | None:
    return await conn.fetchrow("SELECT * FROM sessions WHERE session_id = $1", session_id)


async def _revoke(
    conn: asyncpg.Connection,
    table: Literal["sessions", "browser_sessions"],
    by: Literal["session_id", "user_id", "browser_session_id"],
    key: UUID,
    *,
    at: datetime,
    reason: str,
    ended: bool = False,
) -> list[Row]:
    """Revoke the live rows of ``table`` whose ``by`` column is ``key``: a row revoked already keeps its first
    revocation (time and reason). ``ended``: return the sessions that were live until now."""
    returning = " RETURNING session_id, user_id, account_id" if ended else ""
    return await conn.fetch(
        f"UPDATE {table} SET revoked_at = $2, revoked_reason = $3 WHERE {by} = $1 AND revoked_at IS NULL{returning}",
        key,
        at,
        reason,
    )


async def revoke_session(conn: asyncpg.Connection, session_id: UUID, at: datetime, reason: str) -> list[Row]:
    """Revoke one session; returns it if it was live until now (what must be published), else nothing."""
    return await _revoke(conn, "sessions", "session_id", session_id, at=at, reason=reason, ended=True)


async def session_standing(conn: asyncpg.Connection, session_id: UUID) -> Row | None:
    """A session with whether its user is still a member of its account (identity's check of every token)."""
    return await conn.fetchrow(
        """SELECT s.user_id, s.account_id, s.revoked_at, m.user_id IS NOT NULL AS member
           FROM sessions s LEFT JOIN memberships m ON m.user_id = s.user_id AND m.account_id = s.account_id
           WHERE s.session_id = $1""",
        session_id,
    )


async def revoke_user_sessions(conn: asyncpg.Connection, user_id: UUID, at: datetime, reason: str) -> None:
    await _revoke(conn, "sessions", "user_id", user_id, at=at, reason=reason)


async def insert_refresh(
    conn: asyncpg.Connection, token_hash: bytes, session_id: UUID, issued_at: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        token_hash,
        session_id,
        issued_at,
        expires_at,
    )


async def refresh_for_update(conn: asyncpg.Connection, token_hash: bytes) -> Row | None:
    """The refresh token with its session, both locked: two concurrent uses cannot both succeed."""
    return await conn.fetchrow(
        """SELECT r.token_hash, r.session_id, r.issued_at, r.expires_at, r.used_at,
                  s.user_id, s.account_id, s.client_id, s.scope, s.auth_time, s.revoked_at
           FROM refresh_tokens r JOIN sessions s USING (session_id)
           WHERE r.token_hash = $1
           FOR UPDATE""",
        token_hash,
    )


async def mark_refresh_used(conn: asyncpg.Connection, token_hash: bytes, at: datetime) -> None:
    await conn.execute("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1", token_hash, at)


# -- browser sessions (single sign-on) --------------------------------------------------------------------------
async def insert_browser_session(
    conn: asyncpg.Connection,
    *,
    browser_session_id: UUID,
    token_hash: bytes,
    user_id: UUID,
    account_id: UUID,
    auth_time: datetime,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO browser_sessions (browser_session_id, token_hash, user_id, account_id, auth_time, created_at,
                                         expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        browser_session_id,
        token_hash,
        user_id,
        account_id,
        auth_time,
        created_at,
        expires_at,
    )


async def live_browser_session(conn: asyncpg.Connection, token_hash: bytes, now: datetime) -> Row | None:
    """The browser session a cookie names, if it is neither revoked nor expired and its user is still a member
    of the same account."""
    return await conn.fetchrow(
        """SELECT b.browser_session_id, b.user_id, b.account_id, b.auth_time, b.expires_at, u.email
           FROM browser_sessions b
           JOIN users u USING (user_id)
           JOIN memberships m ON m.user_id = b.user_id AND m.account_id = b.account_id
           WHERE b.token_hash = $1 AND b.revoked_at IS NULL AND b.expires_at > $2""",
        token_hash,
        now,
    )


async def browser_session_id_by_token(conn: asyncpg.Connection, token_hash: bytes) -> UUID | None:
    value = await conn.fetchval("SELECT browser_session_id FROM browser_sessions WHERE token_hash = $1", token_hash)
    return value if isinstance(value, UUID) else None


REPLACED = "replaced by a new sign-in"


async def browser_session_ended(conn: asyncpg.Connection, browser_session_id: UUID) -> bool:
    """Signed out or removed (or unknown). A session replaced by a newer sign-in in the same browser, or one
    that merely expired, does not take back the codes it already issued (they live two minutes)."""
    ended = await conn.fetchval(
        "SELECT revoked_at IS NOT NULL AND revoked_reason IS DISTINCT FROM $2 FROM browser_sessions"
        " WHERE browser_session_id = $1",
        browser_session_id,
        REPLACED,
    )
    return ended is not False


async def revoke_browser_session(
    conn: asyncpg.Connection, browser_session_id: UUID, at: datetime, reason: str, *, client_sessions: bool
) -> list[Row]:
    """End a browser session and, with ``client_sessions``, every refresh-token family signed in through it
    (returned: the sessions that were live until now)."""
    await _revoke(conn, "browser_sessions", "browser_session_id", browser_session_id, at=at, reason=reason)
    if not client_sessions:
        return []
    return await _revoke(conn, "sessions", "browser_session_id", browser_session_id, at=at, reason=reason, ended=True)


async def revoke_user_browser_sessions(conn: asyncpg.Connection, user_id: UUID, at: datetime, reason: str) -> None:
    await _revoke(conn, "browser_sessions", "user_id", user_id, at=at, reason=reason)
