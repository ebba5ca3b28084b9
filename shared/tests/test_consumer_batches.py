"""Batch application: handlers get a batch's new events grouped by type; order that matters is kept; dead
letters are sent only after their batch commits and never twice (replay, rebuild under another name)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from aiokafka import AIOKafkaProducer

from unified_shared.consumer import Apply, HandlerTable, ReceivedEvent
from unified_shared.envelope import Envelope
from unified_shared.testing import TopicWatcher

from .consumer_support import UNLUCKY, batch_consumer, poll_until, record_for, send, sum_batch, totals
from .plumbing_support import TEST_TOPIC, AmountAdded


def _received(account: UUID, amount: int, offset: int) -> ReceivedEvent:
    env = Envelope(
        id=uuid4(), source="/t", type=AmountAdded.ce_type(), time=datetime.now(UTC), subject="s", partitionkey="k"
    )
    return ReceivedEvent(env, AmountAdded(account_id=account, amount=amount), TEST_TOPIC, 0, offset)


def test_plan_groups_by_type_and_cuts_only_where_an_event_would_overtake_its_key() -> None:
    """Two groups (even amounts first, odd second, by the table's order): an even event of an account that
    already had an odd one in the segment must not move ahead of it, so the batch is cut there."""
    calls: list[Any] = []

    async def noop(conn: Any, events: Sequence[ReceivedEvent]) -> None:
        calls.append(events)

    even, odd = Apply(noop), Apply(noop)

    class Table(HandlerTable):
        def group_of(self, received: ReceivedEvent) -> Apply | None:
            assert isinstance(received.event, AmountAdded)
            return even if received.event.amount % 2 == 0 else odd

    table = Table(by_type={AmountAdded: even}, default=odd)
    a, b = uuid4(), uuid4()
    events = [_received(a, 1, 0), _received(b, 2, 1), _received(b, 4, 2), _received(a, 6, 3), _received(b, 3, 4)]
    plan = table.plan(events)
    # a:1 (odd) then a:6 (even) must not swap: cut before a:6; b's even ones may go before a:1
    assert [[(g is even, [e.offset for e in evs]) for g, evs in seg] for seg in plan] == [
        [(True, [1, 2]), (False, [0])],
        [(True, [3]), (False, [4])],
    ]


def _dead_lettering(scope: str) -> dict[str, Any]:
    """The options of a consumer whose dead letters are keyed by ``scope`` and that retries at once."""
    return {"dead_letter_scope": scope, "backoff_base_s": 0.01}


async def test_a_poisoned_batch_falls_back_per_event_and_dead_letters_once_across_generations(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    account = uuid4()
    scope = f"svc-{uuid4().hex[:8]}"
    async with TopicWatcher(kafka_bootstrap, [f"{TEST_TOPIC}.dlq"]) as dlq:
        for n in (1, 2, UNLUCKY, 4, 5):
            await send(producer, *record_for(AmountAdded(account_id=account, amount=n)))
        await send(producer, str(account).encode(), b"not even json", [])
        first = await batch_consumer(pool, kafka_bootstrap, producer, f"{scope}-gen1", **_dead_lettering(scope))
        try:
            await poll_until(first, pool, account, 4)
        finally:
            await first.consumer.stop()
        # a rebuild: a new consumer name from offset 0 in the same scope (its effects go to a fresh table)
        await pool.execute("DELETE FROM totals WHERE account_id = $1", account)
        second = await batch_consumer(pool, kafka_bootstrap, producer, f"{scope}-gen2", **_dead_lettering(scope))
        try:
            await poll_until(second, pool, account, 4)
            for _ in range(4):
                await second.poll_once()
        finally:
            await second.consumer.stop()
        dead = await dlq.collect(lambda r: r.key == str(account), count=3, timeout_s=5, settle_s=0.5)
    assert await totals(pool, account) == (12, 4)
    assert len(dead) == 2, [r.headers.get("dlq_error") for r in dead]  # the 13 and the non-JSON record, once
    assert {r.headers["dlq_consumer"] for r in dead} == {f"{scope}-gen1"}
    # the topic is shared with the other tests of the run: count this account's records only
    mine = "scope = $1 AND kafka_key = $2"
    assert (
        await pool.fetchval(f"SELECT count(*) FROM consumer_dead_letters WHERE {mine}", scope, str(account).encode())
        == 2
    )
    assert (
        await pool.fetchval("SELECT count(*) FROM consumer_dead_letters WHERE scope = $1 AND sent_at IS NULL", scope)
        == 0
    )


async def test_a_batch_rolled_back_sends_no_dead_letter(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    """The DLQ gap: a batch that dead-letters a record and then fails to commit must send nothing; the
    retried batch dead-letters it once."""
    account = uuid4()
    scope = f"svc-{uuid4().hex[:8]}"
    async with TopicWatcher(kafka_bootstrap, [f"{TEST_TOPIC}.dlq"]) as dlq:
        await send(producer, str(account).encode(), b"not even json", [])
        await send(producer, *record_for(AmountAdded(account_id=account, amount=7)))
        consumer = await batch_consumer(pool, kafka_bootstrap, producer, scope, **_dead_lettering(scope))
        real_save = consumer._save_offsets
        failures = [1]

        async def failing_save(conn: asyncpg.Connection, parsed: Any) -> None:
            if failures and any(item.record.key == str(account).encode() for item in parsed):
                failures.pop()
                raise ConnectionError("database went away before the commit")
            await real_save(conn, parsed)

        consumer._save_offsets = failing_save
        try:
            deadline = time.monotonic() + 30
            while (await totals(pool, account))[1] < 1 and time.monotonic() < deadline:
                try:
                    await consumer.poll_once()
                except ConnectionError:  # other tests' records (other partitions) may have committed meanwhile
                    mine = "SELECT count(*) FROM consumer_dead_letters WHERE scope = $1 AND kafka_key = $2"
                    assert await pool.fetchval(mine, scope, str(account).encode()) == 0
                    await consumer.rewind()
        finally:
            await consumer.consumer.stop()
        dead = await dlq.collect(lambda r: r.key == str(account), count=2, timeout_s=5, settle_s=0.5)
    assert not failures
    assert len(dead) == 1
    assert await totals(pool, account) == (7, 1)


async def test_a_failed_batch_is_applied_even_when_the_first_rewind_fails_too(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    """The database goes away while a batch commits and is still away for the rewind: the loop must not poll
    on from past the lost batch (found by the chaos test: two status changes vanished from the view)."""
    account = uuid4()
    scope = f"svc-{uuid4().hex[:8]}"
    consumer = await batch_consumer(pool, kafka_bootstrap, producer, scope, **_dead_lettering(scope))
    real_apply, real_stored = consumer.table.apply, consumer._stored_offsets
    outage = {"batch": 1, "rewind": 0}

    async def apply_then_lose_the_connection(conn: asyncpg.Connection, events: Any) -> None:
        await real_apply(conn, events)
        if outage["batch"]:
            outage["batch"], outage["rewind"] = 0, 1
            raise ConnectionError("the connection closed before the commit")

    async def stored_while_down() -> dict[tuple[str, int], int]:
        if outage["rewind"]:
            outage["rewind"] = 0
            raise ConnectionError("the database system is shutting down")
        return await real_stored()

    consumer.table = SimpleNamespace(apply=apply_then_lose_the_connection)  # type: ignore[assignment]
    consumer._stored_offsets = stored_while_down  # type: ignore[method-assign]
    for n in (1, 2, 3):
        await send(producer, *record_for(AmountAdded(account_id=account, amount=n)))
    loop = asyncio.create_task(consumer.run())
    try:
        deadline = time.monotonic() + 30
        while (await totals(pool, account))[1] < 3 and time.monotonic() < deadline and not loop.done():
            await asyncio.sleep(0.1)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await consumer.consumer.stop()
    assert outage == {"batch": 0, "rewind": 0}  # both faults happened
    assert await totals(pool, account) == (6, 3)


async def test_a_partition_beyond_max_records_is_applied_in_order_in_batches_of_at_most_max_records(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    """A poll takes up to max_records per assigned partition; one partition's share is still applied in
    transactions of at most max_records, one after the other, in log order."""
    account = uuid4()
    batches: list[list[int]] = []

    async def record_batch(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
        mine = [r.event.amount for r in events if r.event.account_id == account]  # type: ignore[attr-defined]
        if mine:
            batches.append(mine)
        await sum_batch(conn, events)

    for n in range(1, 11):
        await send(producer, *record_for(AmountAdded(account_id=account, amount=n)))
    consumer = await batch_consumer(
        pool, kafka_bootstrap, producer, f"svc-{uuid4().hex[:8]}", record_batch, max_records=3
    )
    try:
        await poll_until(consumer, pool, account, 10)
    finally:
        await consumer.consumer.stop()
    assert [n for batch in batches for n in batch] == list(range(1, 11))
    assert max(len(batch) for batch in batches) <= 3
    assert await totals(pool, account) == (55, 10)
