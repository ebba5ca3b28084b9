"""Fixtures of the shared library's tests (the repository's conftest gives the broker and the databases)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from unified_shared.db import migrated_pool
from unified_shared.topics import create_topics

from .plumbing_support import TEST_TOPIC_SPECS


@pytest.fixture
async def pool(fresh_db: str, kafka_bootstrap: str) -> AsyncIterator[asyncpg.Pool]:
    """A fresh database with the shared tables (event store, outbox, consumer offsets), and the test topic."""
    await create_topics(kafka_bootstrap, TEST_TOPIC_SPECS)
    pool = await migrated_pool(fresh_db)
    yield pool
    await pool.close()
