"""Browser sessions in the real PostgreSQL: a sign-in gets a new cookie value (no fixation), only hashes are
stored, and two requests of one browser refreshing at once rotate the refresh token once (identity revokes the
whole family when a rotated token is used again)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from unified_shared.db import migrated_pool
from unified_web import sessions
from unified_web.app import MIGRATIONS

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
async def pool(fresh_db: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await migrated_pool(fresh_db, MIGRATIONS)
    yield pool
    await pool.close()


def tokens(n: int, expires: datetime) -> sessions.Tokens:
    return sessions.Tokens(f"access-{n}", f"refresh-{n}", f"id-{n}", expires)


async def completed(pool: asyncpg.Pool, pending: str, access_expires: datetime, email: str | None = None) -> str:
    """The sign-in of ``pending`` completed at ``NOW`` (a new user and account): the signed-in cookie."""
    return await sessions.complete_login(
        pool,
        pending,
        now=NOW,
        ttl_s=3600,
        user_id=uuid4(),
        account_id=uuid4(),
        email=email,
        tokens=tokens(1, access_expires),
    )


async def signed_in(pool: asyncpg.Pool, access_expires: datetime) -> str:
    pending = await sessions.start_login(
        pool, now=NOW, ttl_s=600, state="s", nonce="n", verifier="v", return_to="/orders"
    )
    return await completed(pool, pending, access_expires, email="a@b.c")


async def test_sign_in_replaces_the_pending_cookie_and_stores_only_hashes(pool: asyncpg.Pool) -> None:
    pending = await sessions.start_login(pool, now=NOW, ttl_s=600, state="s", nonce="n", verifier="v", return_to="/")
    assert (await sessions.load(pool, pending, NOW)).login_state == "s"  # type: ignore[union-attr]
    cookie = await completed(pool, pending, NOW + timedelta(minutes=10))
    assert cookie != pending
    assert await sessions.load(pool, pending, NOW) is None
    session = await sessions.load(pool, cookie, NOW)
    assert session is not None and session.signed_in and session.login_state is None
    stored = await pool.fetchval("SELECT id_hash FROM web_sessions")
    assert bytes(stored) == hashlib.sha256(cookie.encode()).digest()
    assert await sessions.load(pool, cookie, NOW + timedelta(hours=2)) is None  # absolute expiry
    assert await sessions.load(pool, "short", NOW) is None


async def test_concurrent_requests_refresh_once(pool: asyncpg.Pool) -> None:
    cookie = await signed_in(pool, NOW + timedelta(seconds=10))
    used: list[str] = []

    async def refresh(token: str) -> sessions.Tokens:
        used.append(token)
        await asyncio.sleep(0.2)  # identity answering; the other request must wait for this one
        return tokens(len(used) + 1, NOW + timedelta(minutes=10))

    results = await asyncio.gather(
        *(sessions.refreshed_access_token(pool, cookie, now=NOW, margin_s=60, refresh=refresh) for _ in range(4))
    )
    assert used == ["refresh-1"]
    assert {r.access_token for r in results if r} == {"access-2"}
    assert {r.refresh_token for r in results if r} == {"refresh-2"}


async def test_a_refused_refresh_ends_the_session(pool: asyncpg.Pool) -> None:
    cookie = await signed_in(pool, NOW - timedelta(seconds=1))

    async def refused(token: str) -> sessions.Tokens:
        raise sessions.RefreshFailed("invalid_grant")

    assert await sessions.refreshed_access_token(pool, cookie, now=NOW, margin_s=60, refresh=refused) is None
    assert await sessions.load(pool, cookie, NOW) is None
