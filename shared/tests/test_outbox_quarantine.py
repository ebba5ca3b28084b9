"""A row that cannot be published is quarantined after bounded retries: its partition key waits behind
it, every other key goes on, and an operator repairs and releases it (real Kafka and PostgreSQL)."""

import asyncio
import logging
from uuid import uuid4

import asyncpg
import pytest
from prometheus_client import REGISTRY

from unified_shared import eventstore
from unified_shared.kafka import make_producer
from unified_shared.outbox import OutboxRelay
from unified_shared.outbox_cli import main as outbox_cli
from unified_shared.testing import TopicWatcher, eventually

from .plumbing_support import TEST_TOPIC, AmountAdded


async def append(pool: asyncpg.Pool, account: object, stream: str, amount: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        version = await eventstore.stream_version(conn, stream)
        await eventstore.append(conn, stream, version, [AmountAdded(account_id=account, amount=amount)])  # type: ignore[arg-type]


async def append_unpublishable(pool: asyncpg.Pool, account: object, stream: str, amount: int) -> int:
    """Straight into the event store, as the bug of issue 11 did: an instant stored as -infinity."""
    event = AmountAdded(account_id=account, amount=amount)  # type: ignore[arg-type]
    position: int = await pool.fetchval(
        """INSERT INTO event_store (event_id, stream_id, version, event_type, topic, partition_key, payload,
                                    occurred_at)
           VALUES ($1, $2, 1, $3, $4, $5, $6::jsonb, '-infinity') RETURNING position""",
        uuid4(),
        stream,
        event.ce_type(),
        event.TOPIC,
        str(account),
        event.model_dump(mode="json"),
    )
    return position


def amounts_by_key(records: list, key: str) -> list[int]:  # type: ignore[type-arg]
    return [r.value["amount"] for r in sorted(records, key=lambda r: r.offset) if r.key == key]


async def test_a_row_that_cannot_be_enveloped_stops_nobody_elses_events(
    pool: asyncpg.Pool, fresh_db: str, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    stuck, other = uuid4(), uuid4()
    await append(pool, stuck, "stuck-1", 1)
    bad = await append_unpublishable(pool, stuck, "stuck-bad", 2)
    await append(pool, stuck, "stuck-2", 3)  # same key, later: must wait behind the bad row
    for n in range(10, 15):
        await append(pool, other, f"other-{n}", n)
    producer = make_producer(kafka_bootstrap, client_id="test-quarantine")
    await producer.start()
    relay = OutboxRelay(pool, producer, source="/services/test", name="q", batch_size=2, max_row_attempts=2)
    before = REGISTRY.get_sample_value("outbox_quarantined_total", {"relay": "q"}) or 0.0
    task = asyncio.create_task(relay.run())
    try:
        async with TopicWatcher(kafka_bootstrap, [TEST_TOPIC], from_beginning=True) as watcher:
            with caplog.at_level(logging.ERROR, logger="unified_shared.outbox"):
                seen = await watcher.collect(lambda r: r.key == str(other), count=5, timeout_s=60)
                assert amounts_by_key(seen, str(other)) == [10, 11, 12, 13, 14]  # nobody else waits

                async def quarantined() -> list[asyncpg.Record] | None:
                    rows = await pool.fetch("SELECT position, status FROM outbox_quarantine ORDER BY position")
                    return rows if len(rows) == 2 else None

                rows = await eventually(quarantined, "the bad row and the later row of its key in quarantine")
            assert [r["status"] for r in rows] == ["failed", "held"] and rows[0]["position"] == bad
            assert [r.getMessage() for r in caplog.records].count(
                "outbox event quarantined: its partition key waits, every other key goes on"
            ) == 1
            assert REGISTRY.get_sample_value("outbox_quarantined_total", {"relay": "q"}) == before + 1
            status = await relay.status()
            assert (status.quarantined, status.held, status.degraded) == (1, 1, False)
            assert amounts_by_key(watcher.seen, str(stuck)) == [1]  # 3 waits behind 2

            # The operator lists, repairs and releases: the key goes on, in order.
            assert await asyncio.to_thread(outbox_cli, ["--database-url", fresh_db, "--relay", "q", "list"]) == 0
            assert await asyncio.to_thread(outbox_cli, ["--database-url", fresh_db, "repair", str(bad)]) == 0
            args = ["--database-url", fresh_db, "--relay", "q", "release", str(bad)]
            assert await asyncio.to_thread(outbox_cli, args) == 0
            await append(pool, stuck, "stuck-3", 4)
            seen = await watcher.collect(lambda r: r.key == str(stuck), count=4, timeout_s=60)
            assert amounts_by_key(seen, str(stuck)) == [1, 2, 3, 4]

        async def drained() -> bool:
            return await pool.fetchval("SELECT count(*) FROM outbox_quarantine") == 0

        await eventually(drained, "the quarantine emptied once its rows are acknowledged")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()


async def test_the_pipelined_relay_keeps_every_keys_order(pool: asyncpg.Pool, kafka_bootstrap: str) -> None:
    keys = [uuid4() for _ in range(4)]
    async with pool.acquire() as conn:
        for chunk in range(12):
            async with conn.transaction():
                await eventstore.append_streams(
                    conn,
                    [
                        eventstore.StreamAppend(
                            f"p-{chunk}-{i}", 0, [AmountAdded(account_id=keys[i % 4], amount=chunk * 100 + i)]
                        )
                        for i in range(100)
                    ],
                )
    producer = make_producer(kafka_bootstrap, client_id="test-pipeline")
    await producer.start()
    relay = OutboxRelay(pool, producer, source="/services/test", name="p", batch_size=50, max_in_flight=4)
    task = asyncio.create_task(relay.run())
    try:
        async with TopicWatcher(kafka_bootstrap, [TEST_TOPIC], from_beginning=True) as watcher:
            wanted = {str(k) for k in keys}
            seen = await watcher.collect(lambda r: r.key in wanted, count=1200, timeout_s=60)

        async def all_saved() -> bool:
            return await relay.backlog() == 0

        await eventually(all_saved, "every position saved", timeout_s=30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
    for i, key in enumerate(keys):
        got = amounts_by_key(seen, str(key))
        assert got == [chunk * 100 + n for chunk in range(12) for n in range(100) if n % 4 == i]
