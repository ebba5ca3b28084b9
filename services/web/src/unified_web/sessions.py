"""Server-side browser sessions in PostgreSQL: the cookie carries a random value, the row holds the tokens.

Any instance of the web app can serve any request; a token refresh locks the row (``FOR UPDATE``), so two
requests of one browser never rotate the same refresh token twice (identity would revoke the family).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def looks_like_secret(value: str | None) -> bool:
    return value is not None and 20 <= len(value) <= 100 and value.replace("-", "").replace("_", "").isalnum()


@dataclass(slots=True)
class WebSession:
    csrf_token: str
    expires_at: datetime
    login_state: str | None = None
    login_nonce: str | None = None
    login_verifier: str | None = None
    return_to: str | None = None
    user_id: UUID | None = None
    account_id: UUID | None = None
    email: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    access_expires_at: datetime | None = None

    @property
    def signed_in(self) -> bool:
        return self.access_token is not None


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    id_token: str | None
    access_expires_at: datetime


RefreshFn = Callable[[str], Awaitable[Tokens]]

_COLUMNS = (
    "csrf_token, expires_at, login_state, login_nonce, login_verifier, return_to, user_id, account_id, email, "
    "access_token, refresh_token, id_token, access_expires_at"
)


def _row(row: asyncpg.Record) -> WebSession:
    return WebSession(**dict(row))


async def start_login(
    pool: asyncpg.Pool, *, now: datetime, ttl_s: int, state: str, nonce: str, verifier: str, return_to: str
) -> str:
    """A pending sign-in: what the callback must find again (state, nonce, PKCE verifier). Returns the cookie."""
    cookie = new_secret()
    await pool.execute(
        "INSERT INTO web_sessions (id_hash, csrf_token, login_state, login_nonce, login_verifier, return_to,"
        " created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        _hash(cookie),
        new_secret(),
        state,
        nonce,
        verifier,
        return_to,
        now,
        now + timedelta(seconds=ttl_s),
    )
    return cookie


async def load(pool: asyncpg.Pool, cookie: str | None, now: datetime) -> WebSession | None:
    if not looks_like_secret(cookie):
        return None
    assert cookie is not None
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM web_sessions WHERE id_hash = $1 AND expires_at > $2", _hash(cookie), now
    )
    return _row(row) if row else None


async def complete_login(
    pool: asyncpg.Pool,
    pending_cookie: str,
    *,
    now: datetime,
    ttl_s: int,
    user_id: UUID,
    account_id: UUID,
    email: str | None,
    tokens: Tokens,
) -> str:
    """The signed-in session under a new cookie value (no session fixation); the pending row is gone."""
    cookie = new_secret()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM web_sessions WHERE id_hash = $1", _hash(pending_cookie))
        await conn.execute("DELETE FROM web_sessions WHERE expires_at <= $1", now)
        await conn.execute(
            "INSERT INTO web_sessions (id_hash, csrf_token, user_id, account_id, email, access_token, refresh_token,"
            " id_token, access_expires_at, created_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
            _hash(cookie),
            new_secret(),
            user_id,
            account_id,
            email,
            tokens.access_token,
            tokens.refresh_token,
            tokens.id_token,
            tokens.access_expires_at,
            now,
            now + timedelta(seconds=ttl_s),
        )
    return cookie


async def delete(pool: asyncpg.Pool, cookie: str | None) -> None:
    if looks_like_secret(cookie):
        assert cookie is not None
        await pool.execute("DELETE FROM web_sessions WHERE id_hash = $1", _hash(cookie))


class RefreshFailed(Exception):
    """The refresh token no longer works: the session is over (signed out elsewhere, member removed)."""


async def refreshed_access_token(
    pool: asyncpg.Pool, cookie: str, *, now: datetime, margin_s: int, refresh: RefreshFn
) -> WebSession | None:
    """The session with an access token valid for at least ``margin_s`` more seconds, refreshing it under a
    row lock when needed. None when the session is gone or cannot be refreshed (then it is deleted)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM web_sessions WHERE id_hash = $1 AND expires_at > $2 FOR UPDATE",
            _hash(cookie),
            now,
        )
        if row is None:
            return None
        session = _row(row)
        if session.access_expires_at is None or session.access_expires_at > now + timedelta(seconds=margin_s):
            return session
        if not session.refresh_token:
            await conn.execute("DELETE FROM web_sessions WHERE id_hash = $1", _hash(cookie))
            return None
        try:
            tokens = await refresh(session.refresh_token)
        except RefreshFailed:
            await conn.execute("DELETE FROM web_sessions WHERE id_hash = $1", _hash(cookie))
            return None
        await conn.execute(
            "UPDATE web_sessions SET access_token = $2, refresh_token = COALESCE($3, refresh_token),"
            " id_token = COALESCE($4, id_token), access_expires_at = $5 WHERE id_hash = $1",
            _hash(cookie),
            tokens.access_token,
            tokens.refresh_token,
            tokens.id_token,
            tokens.access_expires_at,
        )
        session.access_token = tokens.access_token
        session.refresh_token = tokens.refresh_token or session.refresh_token
        session.id_token = tokens.id_token or session.id_token
        session.access_expires_at = tokens.access_expires_at
        return session
