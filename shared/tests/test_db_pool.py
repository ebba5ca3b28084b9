"""Pooled connections (unified_shared.db): asyncpg's reset query runs on every release (session settings
reset, session advisory locks released) except after ``session_free`` work, which vouches it left no
session state; units of work are ``session_free``."""

from __future__ import annotations

import asyncpg
import pytest

from unified_shared.db import create_pool, session_free
from unified_shared.uow import PgUnits

LOCK = 0x7E57_0001


async def _lock_free(dsn: str) -> bool:
    """Whether another session can take the advisory lock (it is not held by a pooled connection)."""
    other = await asyncpg.connect(dsn)
    try:
        taken = bool(await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK))
        if taken:
            await other.execute("SELECT pg_advisory_unlock($1)", LOCK)
        return taken
    finally:
        await other.close()


async def test_an_ordinary_release_resets_the_session(fresh_db: str) -> None:
    pool = await create_pool(fresh_db, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("SET application_name = 'left-behind'")
            await conn.execute("SELECT pg_advisory_lock($1)", LOCK)
        assert await _lock_free(fresh_db)  # the session lock went with the reset
        async with pool.acquire() as conn:  # the same (only) connection
            assert await conn.fetchval("SHOW application_name") != "left-behind"
    finally:
        await pool.close()


async def test_session_free_work_skips_the_reset_but_an_error_does_not(fresh_db: str) -> None:
    pool = await create_pool(fresh_db, min_size=1, max_size=1)
    try:
        # The skip itself, seen through a session setting (what session_free users must not leave behind).
        async with session_free(pool) as conn:
            await conn.execute("SET application_name = 'not-reset'")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "not-reset"
        # That release was an ordinary one: the setting is gone now.
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") != "not-reset"
        # A session_free block that fails is reset as usual.
        with pytest.raises(RuntimeError):
            async with session_free(pool) as conn:
                await conn.execute("SELECT pg_advisory_lock($1)", LOCK)
                raise RuntimeError("the work failed")
        assert await _lock_free(fresh_db)
    finally:
        await pool.close()


async def test_units_of_work_release_without_the_reset_and_keep_their_transaction_scope(fresh_db: str) -> None:
    pool = await create_pool(fresh_db, min_size=1, max_size=1)
    units: PgUnits[asyncpg.Connection] = PgUnits(lambda: pool, lambda conn: conn, lambda: None)
    try:
        async with units.command() as uow:
            await uow.store.execute("SET application_name = 'in-a-unit'")  # a witness: units must not do this
            await uow.lock("some-key")  # pg_advisory_xact_lock: ends with the transaction
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "in-a-unit"  # no reset query ran
            assert not await conn.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
            )
    finally:
        await pool.close()


async def test_a_long_statement_is_prepared_once_and_kept(fresh_db: str) -> None:
    """A statement longer than asyncpg's default limit (15 KiB, seller_view's summaries statements are 20-25)
    is still prepared once per connection and kept, not parsed and planned again at every execution."""
    long_sql = "SELECT $1::int + 1 AS n -- " + "x" * 30_000
    pool = await create_pool(fresh_db, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            for i in range(3):
                assert await conn.fetchval(long_sql, i) == i + 1
            kept = await conn.fetch(
                "SELECT generic_plans + custom_plans AS runs FROM pg_prepared_statements WHERE statement = $1",
                long_sql,
            )
        assert [r["runs"] for r in kept] == [3]
    finally:
        await pool.close()
