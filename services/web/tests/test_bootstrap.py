"""The web app's composition root: it refuses to start without its OIDC client secret (before touching any
database), creates and migrates its session database when missing, closes its HTTP client when stopped, and
hands the pages the clock it was given."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from unified_shared.clock import FixedClock
from unified_web.bootstrap import bootstrap
from unified_web.settings import Settings


def test_without_a_client_secret_the_app_refuses_to_start() -> None:
    # No database answers at this address: the refusal must come before any connection is tried.
    nowhere = "postgresql://postgres@127.0.0.1:1/none"
    app = bootstrap(Settings(oidc_client_secret=None, oidc_client_secret_file=None, database_url=nowhere))

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(RuntimeError, match="OIDC_CLIENT_SECRET"):
        asyncio.run(start())


@pytest.fixture
def missing_db(infra) -> Iterator[tuple[str, str]]:
    """The DSN of a database that does not exist yet (dropped afterwards), and the admin DSN."""
    name = f"t_web_{uuid.uuid4().hex[:12]}"
    yield infra.dsn_for(name), infra.pg_admin_dsn

    async def drop() -> None:
        conn = await asyncpg.connect(infra.pg_admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


async def test_the_session_database_is_created_and_migrated_and_the_pages_read_the_clock(
    missing_db: tuple[str, str],
) -> None:
    dsn, _ = missing_db
    clock = FixedClock("2026-10-01T12:00:00Z")
    app = bootstrap(Settings(oidc_client_secret="s3cret", database_url=dsn), clock=clock)
    web = app.state.web
    async with app.router.lifespan_context(app):
        assert web.clock() == clock()
        async with web.pool.acquire() as conn:
            tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
        assert "web_sessions" in tables, tables
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://web") as client:
            r = await client.get("/health/live")
        assert r.status_code == 200
    assert web.http.is_closed
