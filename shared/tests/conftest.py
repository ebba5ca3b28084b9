"""Fixtures of the shared library's tests (the repository's conftest gives the broker and the databases)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from unified_shared.db import SHARED_COMPONENT, apply_migrations, create_pool
from unified_shared.topics import create_topics

from .plumbing_support import TEST_TOPIC_SPECS


@pytest.fixture
async def pool(fresh_db: str, kafka_bootstrap: str) -> AsyncIterator[asyncpg.Pool]:
    """A fresh database with the shared tables (event store, outbox, consumer offsets), and the test topic."""
    await create_topics(kafka_bootstrap, TEST_TOPIC_SPECS)
    pool = await create_pool(fresh_db)
    async with pool.acquire() as conn:
        await apply_migrations(conn, [SHARED_COMPONENT])
    yield pool
    await pool.close()
