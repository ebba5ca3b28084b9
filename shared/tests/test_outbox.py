import asyncio
import contextlib
from typing import Any, cast
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import OutOfOrderSequenceNumber

from unified_shared import eventstore
from unified_shared.db import connect
from unified_shared.kafka import make_producer
from unified_shared.outbox import OutboxRelay
from unified_shared.testing import TopicWatcher

from .plumbing_support import TEST_TOPIC, AmountAdded


class Crash(Exception):
    pass


class CrashBeforeSavingRelay(OutboxRelay):
    """Dies after Kafka acknowledged the batch and before the position is saved."""

    async def save_position(self, conn: asyncpg.Connection, position: int) -> None:
        raise Crash()


async def published_amounts(bootstrap: str, account: str, count: int) -> list[int]:
    async with TopicWatcher(bootstrap, [TEST_TOPIC], from_beginning=True) as watcher:
        seen = await watcher.collect(lambda r: r.key == account, count=count, timeout_s=15, settle_s=0.5)
    seen.sort(key=lambda r: r.offset)  # one key, one partition: offsets are publish order
    return [r.value["amount"] for r in seen]


async def test_a_transaction_that_commits_late_is_never_skipped(
    pool: asyncpg.Pool, fresh_db: str, kafka_bootstrap: str
) -> None:
    """The first transaction appends and stays open while a second one appends and commits after it.

    The relay reads only rows of transactions older than every running one: a pass in between publishes
    nothing (the second's row waits behind the open first), and afterwards both go out in transaction
    order. Reading by position (or by txid without the pg_snapshot_xmin bound) publishes the second,
    moves past the first's row and loses it: this test fails that way when the bound is removed.
    """
    producer = make_producer(kafka_bootstrap, client_id="test-relay")
    await producer.start()
    relay = OutboxRelay(pool, producer, source="/services/test", name="test")
    account = uuid4()
    first, second = await connect(fresh_db), await connect(fresh_db)
    try:
        tx1 = first.transaction()
        await tx1.start()
        await eventstore.append(first, "stream-a", 0, [AmountAdded(account_id=account, amount=1)])
        async with second.transaction():  # commands run side by side: nothing waits for the open first
            await eventstore.append(second, "stream-b", 0, [AmountAdded(account_id=account, amount=2)])
        assert await relay.publish_once(wait_s=0.5) == 0  # must not move past the open transaction
        await tx1.commit()
        while await relay.publish_once():
            pass
        amounts = await published_amounts(kafka_bootstrap, str(account), 2)
        assert amounts == [1, 2], "a row was skipped or the order is not transaction order"
        assert await relay.backlog() == 0
    finally:
        await first.close()
        await second.close()
        await producer.stop()


async def test_relay_killed_between_publishing_and_saving_loses_nothing(
    pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    account = uuid4()
    async with pool.acquire() as conn:
        for n in range(1, 6):
            async with conn.transaction():
                await eventstore.append(conn, f"s-{n}", 0, [AmountAdded(account_id=account, amount=n)])
    producer = make_producer(kafka_bootstrap, client_id="test-relay-crash")
    await producer.start()
    try:
        crashing = CrashBeforeSavingRelay(pool, producer, source="/services/test", name="main", batch_size=3)
        with pytest.raises(Crash):
            await crashing.publish_once()
        async with pool.acquire() as conn:
            assert await crashing.position(conn) == 0
        restarted = OutboxRelay(pool, producer, source="/services/test", name="main", batch_size=3)
        while await restarted.publish_once():
            pass
        async with pool.acquire() as conn:
            assert await restarted.position(conn) == 5
        assert await restarted.backlog() == 0
    finally:
        await producer.stop()
    amounts = await published_amounts(kafka_bootstrap, str(account), 8)
    assert sorted(set(amounts)) == [1, 2, 3, 4, 5]  # nothing lost
    assert amounts == [1, 2, 3, 1, 2, 3, 4, 5]  # the unsaved batch went out again: duplicates, in order


async def test_health_turns_degraded_when_the_oldest_unpublished_event_ages(
    pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    """Degraded follows the age of the oldest unpublished event, not only the last error (which a relay
    waiting inside the producer's retries never sets): here no relay runs at all."""
    from unified_shared.testing import eventually

    producer = make_producer(kafka_bootstrap, client_id="test-relay-degraded")
    await producer.start()
    relay = OutboxRelay(pool, producer, source="/services/test", name="aging", degraded_after_s=0.5)
    try:
        assert not (await relay.status()).degraded
        async with pool.acquire() as conn, conn.transaction():
            await eventstore.append(conn, "aging-1", 0, [AmountAdded(account_id=uuid4(), amount=1)])

        async def degraded() -> bool:
            return (await relay.status()).degraded

        await eventually(degraded, "degraded once the unpublished event is older than 0.5 s", timeout_s=30)
        assert relay.last_error is None
        assert await relay.publish_once() == 1
        status = await relay.status()
        assert (status.degraded, status.backlog, status.oldest_unpublished_age_s) == (False, 0, 0.0)
    finally:
        await producer.stop()


class DeadSender:
    """aiokafka's idempotent producer once its sender stopped on OutOfOrderSequenceNumber (sequence numbers
    that ran on for batches expired in a long broker outage): every send fails, for good."""

    def __init__(self, real: AIOKafkaProducer) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def send_batch(self, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failed.set_exception(OutOfOrderSequenceNumber())
        return failed

    send = send_batch


async def test_a_producer_that_failed_for_good_is_replaced(pool: asyncpg.Pool, kafka_bootstrap: str) -> None:
    """The relay starts a new producer (a new producer id) instead of retrying forever on a dead one; without
    the replacement nothing is ever published again (the chaos test saw it after a broker restart)."""
    from unified_shared.testing import eventually

    account = uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await eventstore.append(conn, "replaced-1", 0, [AmountAdded(account_id=account, amount=7)])
    real = make_producer(kafka_bootstrap, client_id="test-relay-dead")
    await real.start()
    relay = OutboxRelay(
        pool,
        cast(AIOKafkaProducer, DeadSender(real)),
        source="/services/test",
        name="replaced",
        producer_factory=lambda: make_producer(kafka_bootstrap, client_id="test-relay-new"),
    )
    task = asyncio.create_task(relay.run())
    try:

        async def published() -> bool:
            return await relay.backlog() == 0

        await eventually(published, "the event published through a new producer", timeout_s=30)
        assert await published_amounts(kafka_bootstrap, str(account), 1) == [7]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await real.stop()
