"""Fixtures of the shared library's tests (the repository's conftest gives the broker and the databases)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from unified_shared.db import migrated_pool
from unified_shared.kafka import make_producer
from unified_shared.topics import create_topics

from .consumer_support import TOTALS_DDL
from .plumbing_support import TEST_TOPIC_SPECS


@pytest.fixture
async def pool(fresh_db: str, kafka_bootstrap: str) -> AsyncIterator[asyncpg.Pool]:
    """A fresh database with the shared tables (event store, outbox, consumer offsets) and the ``totals`` the
    consumer tests' handlers add to, and the test topic."""
    await create_topics(kafka_bootstrap, TEST_TOPIC_SPECS)
    pool = await migrated_pool(fresh_db)
    await pool.execute(TOTALS_DDL)
    yield pool
    await pool.close()


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = make_producer(kafka_bootstrap, client_id="test-producer")
    await p.start()
    yield p
    await p.stop()
