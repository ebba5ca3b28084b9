"""Commits of a read model that does not wait for the WAL flush (``durable_commits=False``): its batches commit
with ``synchronous_commit`` off, every other consumer's as the server says, and a batch that records a dead
letter commits durably (the letter is sent after the commit: it must not be lost and sent again)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import asyncpg
from aiokafka import AIOKafkaProducer

from .consumer_support import UNLUCKY, batch_consumer, poll_until, record_for, send, totals
from .plumbing_support import AmountAdded


def _poisoned(item: Any) -> bool:
    """Whether the consumer dead-letters this record: not parsed, or the amount the test handler refuses."""
    return item.error is not None or getattr(item.received.event, "amount", None) == UNLUCKY


async def _commit_settings(consumer: Any) -> list[tuple[bool, set[bytes], str]]:
    """Per committed batch: whether it dead-letters a record, its Kafka keys, and what its transaction has for
    synchronous_commit just before it commits (its last statement is the offsets')."""
    seen: list[tuple[bool, set[bytes], str]] = []
    real_save = consumer._save_offsets

    async def save_and_look(conn: asyncpg.Connection, parsed: Any) -> None:
        await real_save(conn, parsed)
        setting = await conn.fetchval("SELECT current_setting('synchronous_commit')")
        seen.append((any(_poisoned(i) for i in parsed), {i.record.key for i in parsed}, setting))

    consumer._save_offsets = save_and_look
    return seen


async def test_a_read_model_commits_without_waiting_for_the_flush_and_others_as_the_server_says(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    server = await pool.fetchval("SELECT current_setting('synchronous_commit')")
    assert server == "on"  # the test's premise: the server's default is a durable commit
    for durable, expected in ((False, "off"), (True, "on")):
        account = uuid4()
        for n in (1, 2, 3):
            await send(producer, *record_for(AmountAdded(account_id=account, amount=n)))
        consumer = await batch_consumer(
            pool, kafka_bootstrap, producer, f"commits-{uuid4().hex[:8]}", durable_commits=durable
        )
        seen = await _commit_settings(consumer)
        try:
            await poll_until(consumer, pool, account, 3)
        finally:
            await consumer.consumer.stop()
        assert await totals(pool, account) == (6, 3)
        # every batch without a dead letter (other tests' poisons share the topic: those commit durably)
        assert {setting for poisoned, _, setting in seen if not poisoned} == {expected}, (durable, seen)
        # the setting is the transaction's own: the pool's connections keep the server's
        assert await pool.fetchval("SELECT current_setting('synchronous_commit')") == server


async def test_a_batch_that_records_a_dead_letter_commits_durably(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    account = uuid4()
    name = f"commits-{uuid4().hex[:8]}"
    await send(producer, str(account).encode(), b"not even json", [])
    consumer = await batch_consumer(
        pool, kafka_bootstrap, producer, name, durable_commits=False, dead_letter_scope=name, backoff_base_s=0.01
    )
    seen = await _commit_settings(consumer)
    try:
        await send(producer, *record_for(AmountAdded(account_id=account, amount=5)))
        await poll_until(consumer, pool, account, 1)
    finally:
        await consumer.consumer.stop()
    mine = "SELECT count(*) FROM consumer_dead_letters WHERE scope = $1 AND kafka_key = $2"
    assert await pool.fetchval(mine, name, str(account).encode()) == 1
    key = str(account).encode()
    assert [setting for poisoned, keys, setting in seen if key in keys] == ["on"], seen
    # a batch commits durably exactly when it records a dead letter
    assert all((setting == "on") == poisoned for poisoned, _, setting in seen), seen
