"""Fixtures of billing's tests (the repository's conftest gives the broker and the databases)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from .support import migrated_pool


@pytest.fixture
async def pool(fresh_db: str) -> AsyncIterator[asyncpg.Pool]:
    """A fresh database with billing's tables, closed after the test."""
    pool = await migrated_pool(fresh_db)
    yield pool
    await pool.close()
