import asyncio
import time
from uuid import UUID, uuid4

import asyncpg
from aiokafka import AIOKafkaProducer

from unified_shared.testing import TopicWatcher

from .consumer_support import (
    UNLUCKY,
    drain,
    make_consumer_for,
    poll_until,
    record_for,
    running_consumer,
    send,
    totals,
)
from .plumbing_support import TEST_TOPIC, AmountAdded


async def test_an_event_delivered_twice_is_applied_once(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    account = uuid4()
    twice = record_for(AmountAdded(account_id=account, amount=5))
    await send(producer, *twice)
    await send(producer, *twice)  # the same ce_id again: a redelivery after a relay crash
    await send(producer, *record_for(AmountAdded(account_id=account, amount=7)))
    async with running_consumer(pool, kafka_bootstrap, producer, f"c-{uuid4().hex[:8]}") as consumer:
        await poll_until(consumer, pool, account, 2)
        await drain(consumer)
        assert await totals(pool, account) == (12, 2)


async def test_replay_from_offset_zero_changes_nothing(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    account = uuid4()
    for n in (1, 2, 3):
        await send(producer, *record_for(AmountAdded(account_id=account, amount=n)))
    name = f"c-{uuid4().hex[:8]}"
    async with running_consumer(pool, kafka_bootstrap, producer, name) as consumer:
        await poll_until(consumer, pool, account, 3)
        before = await totals(pool, account)
        # Replay the whole topic: rewind every partition to offset 0, in Kafka and in the stored offsets.
        await pool.execute("UPDATE consumer_offsets SET next_offset = 0 WHERE consumer = $1", name)
        await consumer.consumer.seek_to_beginning(*consumer.consumer.assignment())
        await drain(consumer, 10)
        assert await totals(pool, account) == before == (6, 3)
        stored = await pool.fetchval("SELECT sum(next_offset) FROM consumer_offsets WHERE consumer = $1", name)
        assert stored > 0


async def test_poison_message_goes_to_dlq_with_its_reason_and_the_next_is_processed(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    account = uuid4()
    key, _, headers = record_for(AmountAdded(account_id=account, amount=1))
    bad_value = b'{"account_id": "' + str(account).encode() + b'", "amount": "not a number"}'
    unlucky = record_for(AmountAdded(account_id=account, amount=UNLUCKY))
    async with TopicWatcher(kafka_bootstrap, [f"{TEST_TOPIC}.dlq"]) as dlq:
        await send(producer, key, bad_value, headers)
        await send(producer, *unlucky)
        await send(producer, *record_for(AmountAdded(account_id=account, amount=4)))
        async with running_consumer(pool, kafka_bootstrap, producer, f"c-{uuid4().hex[:8]}") as consumer:
            await poll_until(consumer, pool, account, 1)
            dead = await dlq.collect(lambda r: r.key == str(account), count=2, timeout_s=15, settle_s=0.5)
    assert await totals(pool, account) == (4, 1)
    assert len(dead) == 2
    by_error = sorted(dead, key=lambda r: int(r.headers["dlq_original_offset"]))  # 99 < 100
    schema_error, handler_error = by_error
    assert schema_error.headers["dlq_original_topic"] == TEST_TOPIC
    assert "amount" in schema_error.headers["dlq_error"]
    assert schema_error.headers["dlq_original_partition"].isdigit()
    assert schema_error.headers["ce_id"] == dict((k, v.decode()) for k, v in headers)["ce_id"]
    assert "13 is never accepted" in handler_error.headers["dlq_error"]
    # The topic is shared with the other tests of the run: count only what this account's records became.
    dead_ids = [UUID(r.headers["ce_id"]) for r in dead]
    outcomes = await pool.fetch(
        "SELECT outcome FROM consumer_processed_events WHERE event_id = ANY($1::uuid[])", dead_ids
    )
    assert [r["outcome"] for r in outcomes] == ["dead-lettered", "dead-lettered"]


async def test_unknown_event_type_is_counted_and_skipped(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    account = uuid4()
    key, value, headers = record_for(AmountAdded(account_id=account, amount=1))
    headers = [(k, b"unifiedseller.test.SomethingNew.v1" if k == "ce_type" else v) for k, v in headers]
    await send(producer, key, value, headers)
    await send(producer, *record_for(AmountAdded(account_id=account, amount=2)))
    async with running_consumer(pool, kafka_bootstrap, producer, f"c-{uuid4().hex[:8]}") as consumer:
        await poll_until(consumer, pool, account, 1)
    assert await totals(pool, account) == (2, 1)
    assert await pool.fetchval("SELECT count(*) FROM consumer_processed_events WHERE outcome = 'unknown-type'") == 1


async def test_run_survives_and_resumes(pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str) -> None:
    """The run loop applies what arrives while it runs; a restart with the same name resumes, not re-applies."""
    account = uuid4()
    name = f"c-{uuid4().hex[:8]}"
    consumer = await make_consumer_for(pool, kafka_bootstrap, producer, name)
    task = asyncio.create_task(consumer.run())
    try:
        for n in (10, 20):
            await send(producer, *record_for(AmountAdded(account_id=account, amount=n)))
        deadline = time.monotonic() + 30
        while (await totals(pool, account))[1] < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.consumer.stop()
    await send(producer, *record_for(AmountAdded(account_id=account, amount=30)))
    async with running_consumer(pool, kafka_bootstrap, producer, name) as again:
        await poll_until(again, pool, account, 3)
        await drain(again)
    assert await totals(pool, account) == (60, 3)


async def test_a_record_without_an_envelope_is_dead_lettered_once_even_when_replayed(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    account = uuid4()
    name = f"c-{uuid4().hex[:8]}"
    async with TopicWatcher(kafka_bootstrap, [f"{TEST_TOPIC}.dlq"]) as dlq:
        await send(producer, str(account).encode(), b"not even json", [])
        await send(producer, *record_for(AmountAdded(account_id=account, amount=3)))
        async with running_consumer(pool, kafka_bootstrap, producer, name) as consumer:
            await poll_until(consumer, pool, account, 1)
            await pool.execute("UPDATE consumer_offsets SET next_offset = 0 WHERE consumer = $1", name)
            await consumer.consumer.seek_to_beginning(*consumer.consumer.assignment())
            await drain(consumer, 10)
            dead = await dlq.collect(lambda r: r.key == str(account), count=2, timeout_s=5)
    assert len(dead) == 1
    assert "envelope" in dead[0].headers["dlq_error"]
    assert await totals(pool, account) == (3, 1)
