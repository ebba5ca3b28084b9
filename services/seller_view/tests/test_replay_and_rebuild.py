"""Replay and rebuild: the same history gives the same bytes; a rebuild gives the same answers and readers
are served throughout."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord, TopicPartition

from unified_seller_view import generations as gens
from unified_seller_view import store
from unified_seller_view.handlers import apply_event, handler_for
from unified_seller_view.order_versions import GROUPS, of_row, version_columns
from unified_seller_view.runtime import MIGRATIONS
from unified_shared.consumer import IdempotentConsumer
from unified_shared.contracts import orders
from unified_shared.db import SHARED_COMPONENT, apply_migrations, connect, create_pool
from unified_shared.kafka import make_consumer, make_producer, make_reader
from unified_shared.testing_services import run_module

from .scenario import base_scenario, fx_events
from .support import DE, US, View, as_received, publisher, utc, view_of


def rich_scenario() -> Any:
    s = base_scenario()
    t0 = utc(2026, 10, 20, 9)
    s.buyer_message("a", US, t0)
    s.buyer_message("b", DE, t0 - timedelta(days=2))
    s.reply("b", DE, t0 - timedelta(hours=20))
    s.buyer_message("b", DE, t0 - timedelta(hours=2))
    # Entries recorded out of time order: a late "no response needed" mark, a backdated buyer message.
    s.buyer_message("c", DE, t0 - timedelta(hours=10))
    s.buyer_message("c", DE, t0 - timedelta(hours=6))
    s.no_response("c", DE, t0 - timedelta(hours=8))
    s.buyer_message("d", US, t0 - timedelta(hours=30))
    s.reply("d", US, t0 - timedelta(hours=28))
    s.buyer_message("d", US, t0 - timedelta(hours=29))
    late = s.place(DE, utc(2026, 9, 14, 8), "80.00", 2, "Unshipped")
    placed = s.events.pop()
    s.add(*s.change(late, "Shipped", utc(2026, 9, 15, 9)))
    s.add(*s.refund(late, "20.00", utc(2026, 9, 16, 9)))
    s.events.append(placed)  # the order arrives after its change and refund
    return s


async def read_range(
    bootstrap: str, start: dict[tuple[str, int], int], end: dict[tuple[str, int], int]
) -> list[ConsumerRecord[Any, Any]]:
    """Every record between two sets of offsets, partition by partition (the order a consumer sees)."""
    consumer = make_reader(bootstrap, client_id="seller-view-test-reader")
    await consumer.start()
    out: list[ConsumerRecord[Any, Any]] = []
    try:
        wanted = {tp: (start.get(tp, 0), stop) for tp, stop in end.items() if stop > start.get(tp, 0)}
        parts = [TopicPartition(t, p) for t, p in sorted(wanted)]
        consumer.assign(parts)
        for tp in parts:
            consumer.seek(tp, wanted[(tp.topic, tp.partition)][0])
        done: set[TopicPartition] = set()
        while len(done) < len(parts):
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                stop = wanted[(tp.topic, tp.partition)][1]
                out.extend(r for r in records if r.offset < stop)
                if records and records[-1].offset >= stop - 1:
                    done.add(tp)
                    consumer.pause(tp)
    finally:
        await consumer.stop()
    return sorted(out, key=lambda r: (r.topic, r.partition, r.offset))


async def test_whole_history_delivered_twice_leaves_the_view_byte_for_byte_the_same(make_db, kafka_bootstrap) -> None:
    s = rich_scenario()
    dsn = await make_db()
    pool = await create_pool(dsn)
    producer = make_producer(kafka_bootstrap, client_id="seller-view-test-dlq")
    await producer.start()
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, [SHARED_COMPONENT, MIGRATIONS])
        start = await gens.end_offsets(kafka_bootstrap)
        async with publisher(make_db, kafka_bootstrap) as pub:
            await pub.publish(*fx_events(), *s.events)
        end = await gens.end_offsets(kafka_bootstrap)
        history = await read_range(kafka_bootstrap, start, end)
        assert len(history) >= len(s.events) + 3
        base = f"sv-twice-{uuid.uuid4().hex[:8]}"
        async with pool.acquire() as conn:
            first = await gens.create_generation(conn, base, gens.origin_from_offsets(start), "live")
            second = await gens.create_generation(conn, base, gens.origin_from_offsets(start), "building")
        consumer = IdempotentConsumer(
            pool,
            make_consumer(kafka_bootstrap, group_id=first.consumer_name, client_id="unused", topics=[]),
            producer,
            name=first.consumer_name,
            topics=gens.TOPICS,
            handler=handler_for(first.schema),
        )
        await consumer.process(history)
        async with pool.acquire() as conn:
            once = await store.dump(conn, first.schema)
        assert str(s.account_id) in once and "Shipped" in once
        await consumer.process(history)  # the whole history again (a replay from offset zero)
        async with pool.acquire() as conn:
            twice = await store.dump(conn, first.schema)
        assert twice == once
        # The handlers alone, without the consumer's deduplication, each event applied twice in a row into
        # a fresh generation: the same bytes again (idempotent and deterministic: no clocks, no serials).
        for record in history:
            parsed = consumer.parse(record)
            if parsed.received is None:
                continue
            received = parsed.received
            for _ in range(2):
                async with pool.acquire() as conn, conn.transaction():
                    await gens.use_schema(conn, second.schema)
                    await apply_event(
                        conn, received.event, event_id=received.event_id, sequence=received.envelope.sequence
                    )
        async with pool.acquire() as conn:
            assert await store.dump(conn, second.schema) == once
    finally:
        await producer.stop()
        await pool.close()


async def answers(view: View, account_id: uuid.UUID) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for currency in ("USD", "EUR"):
        out[f"overview-{currency}"] = await view.json(account_id, "overview", currency=currency)
    pages, token = [], None
    while True:
        page = await view.json(account_id, "orders", max_results=3, next_token=token)
        pages.append(page)
        token = page["next_token"]
        if token is None:
            break
    out["orders"] = pages
    out["messages"] = await view.json(account_id, "messages", as_of="2026-10-21T08:00:00Z")
    out["subscriptions"] = await view.json(account_id, "subscriptions")
    out["invoices"] = await view.json(account_id, "invoices")
    return out


async def test_rebuild_gives_the_same_answers_and_readers_are_served_throughout(make_db, kafka_bootstrap) -> None:
    s = rich_scenario()
    async with view_of(make_db, kafka_bootstrap, *fx_events(), *s.events) as (view, pub):
        live = await answers(view, s.account_id)
        assert live["overview-USD"]["total"]["orders"] == len(s.orders)

        statuses: list[int] = []
        stop = asyncio.Event()

        async def keep_reading() -> None:
            while not stop.is_set():
                statuses.append((await view.get(s.account_id, "overview")).status_code)
                await asyncio.sleep(0.05)

        reader = asyncio.create_task(keep_reading())
        env = {
            **os.environ,
            "DATABASE_URL": view.dsn,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CONSUMER_GROUP": view.settings.consumer_group or "",
        }
        code, output, _ = await run_module("unified_seller_view", "rebuild", env=env, merge_stderr=True, timeout_s=180)
        await asyncio.sleep(0.5)
        stop.set()
        await reader
        assert code == 0, output
        assert "switched: generation 2" in output
        assert statuses and set(statuses) == {200}
        # its progress: a plain line (not a terminal) with applied / to apply, and the row serving instances read
        assert "rebuilding generation 2: " in output
        conn = await asyncpg.connect(view.dsn)
        try:
            progress = await conn.fetchval("SELECT progress FROM view_generations WHERE generation = 2")
        finally:
            await conn.close()
        recorded = json.loads(progress) if isinstance(progress, str) else progress
        assert recorded["applied"] > 0 and recorded["to_apply"] >= recorded["applied"] - 10, recorded

        fresh = await view.json(s.account_id, "freshness")
        assert (fresh["generation"], fresh["schema"]) == (2, "view_2")
        assert await answers(view, s.account_id) == live
        conn = await asyncpg.connect(view.dsn)
        try:
            assert await store.dump(conn, "view_2", [s.account_id]) == await store.dump(conn, "view_1", [s.account_id])
        finally:
            await conn.close()

        # The serving process follows the pointer: what is published now lands in generation 2.
        s.events.clear()
        newer = s.place(US, utc(2026, 10, 2, 12), "7.00", 1)
        await pub.publish(*s.events)
        await view.caught_up()
        got = await view.json(s.account_id, "orders", order_id=newer.amazon_order_id)
        assert [o["amazon_order_id"] for o in got["orders"]] == [newer.amazon_order_id]


async def test_a_generation_from_before_the_read_model_steps_stays_current_and_gets_only_new_steps(make_db) -> None:
    """A generation made from the single readmodel.sql (no step records, that file's checksum) had steps 1, 3 and
    4: the upgrade records them without running them again and keeps it current, so no rebuild is needed."""
    conn = await connect(await make_db())
    try:
        await apply_migrations(conn, [SHARED_COMPONENT, MIGRATIONS])
        for version in (3, 4):  # the database migrations that gave older generations steps 3 and 4
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, name, checksum) VALUES ('seller_view', $1, '', '')",
                version,
            )
        legacy = await gens.create_generation(conn, "sv-legacy", {}, "live")
        outdated = await gens.create_generation(conn, "sv-legacy", {}, "retired")
        for gen, checksum in ((legacy, gens.LEGACY_READMODEL_CHECKSUM), (outdated, "an older readmodel.sql")):
            await conn.execute("DELETE FROM schema_migrations WHERE component = $1", gens.steps_component(gen.schema))
            await conn.execute(
                "UPDATE view_generations SET ddl_checksum = $2 WHERE generation = $1", gen.number, checksum
            )
            # as the single readmodel.sql made them: without what the steps after 4 make
            await conn.execute(f'DROP TABLE "{gen.schema}".order_contributions')
            await conn.execute(f'ALTER TABLE "{gen.schema}".orders DROP version_sequence, DROP version_event_id')
            groups = ", ".join(f"DROP {c}" for g in GROUPS for c in version_columns(g))
            await conn.execute(f'ALTER TABLE "{gen.schema}".orders {groups}')
        # steps 1, 3 and 4 not run again (a re-run would fail: tables exist), the steps after them run
        assert await gens.upgrade_generations(conn) == [
            f"{gen.schema}:{step}"
            for gen in (legacy, outdated)
            for step in ("005_order_contributions", "006_order_versions", "007_order_field_versions")
        ]
        for gen in (legacy, outdated):
            assert [v for v, _ in await gens.applied_steps(conn, gen.schema)] == [1, 3, 4, 5, 6, 7]
        assert (await gens.generation(conn, legacy.number)).ddl_checksum == gens.ddl_checksum()
        assert (await gens.generation(conn, outdated.number)).ddl_checksum == "an older readmodel.sql"
    finally:
        await conn.close()


def _change(placed: orders.OrderPlaced, hours: int, status: str) -> orders.OrderStatusChanged:
    return orders.OrderStatusChanged(
        **placed.model_dump(include={"account_id", "marketplace_id", "amazon_order_id", "region"}),
        from_status="Unshipped",
        to_status=status,  # type: ignore[arg-type]
        last_update_date=placed.last_update_date + timedelta(hours=hours),
    )


def _refund(placed: orders.OrderPlaced, hours: int) -> orders.OrderRefunded:
    at = placed.last_update_date + timedelta(hours=hours)
    return orders.OrderRefunded(
        **placed.model_dump(include={"account_id", "marketplace_id", "amazon_order_id", "region"}),
        amount=placed.order_total.model_copy(update={"amount": placed.order_total.amount / 2}),
        refunded_at=at,
        last_update_date=at,
    )


async def test_orders_from_before_field_versions_keep_what_they_reflected(make_db) -> None:
    """Step 007 on a generation with orders: a field group without a version of its own is at the row's version
    (what the row reflected then), so a change older than the row still changes nothing; a refund that moves
    the row's version leaves the groups where they were, so a change between the two still applies."""
    conn = await connect(await make_db())
    try:
        await apply_migrations(conn, [SHARED_COMPONENT, MIGRATIONS])
        gen = await gens.create_generation(conn, "sv-fields", {}, "live")
        s = base_scenario()
        placed = s.placed_event(s.place(US, utc(2026, 9, 1, 10), "20.00", 2))
        other = s.placed_event(s.place(US, utc(2026, 9, 1, 11), "30.00", 1))
        resent = other.model_copy(update={"last_update_date": other.last_update_date + timedelta(hours=1)})
        resent = resent.model_copy(update={"order_total": other.order_total.model_copy(update={"amount": 31})})
        first, second, *later, newer_snapshot = as_received(
            [placed, other, _change(placed, -1, "Canceled"), _refund(placed, 2), _change(placed, 1, "Shipped"), resent]
        )
        apply = handler_for(gen.schema)
        for received in (first, second):
            async with conn.transaction():
                await apply(conn, received)
        # as a generation from before step 007 holds the order: without the groups' versions
        columns = ", ".join(f"DROP {c}" for g in GROUPS for c in version_columns(g))
        await conn.execute(f'ALTER TABLE "{gen.schema}".orders {columns}')
        await conn.execute(
            "DELETE FROM schema_migrations WHERE component = $1 AND version = 7", gens.steps_component(gen.schema)
        )
        assert await gens.upgrade_generations(conn) == [f"{gen.schema}:007_order_field_versions"]
        row = await conn.fetchrow(
            f'SELECT * FROM "{gen.schema}".orders WHERE amazon_order_id = $1', placed.amazon_order_id
        )
        assert row["status_at"] is None and all(of_row(row, group) == of_row(row) for group in GROUPS)
        for received, status in zip(later, ("Unshipped", "Unshipped", "Shipped"), strict=True):
            async with conn.transaction():
                await apply(conn, received)
            got = f'SELECT status FROM "{gen.schema}".orders WHERE amazon_order_id = $1'
            assert await conn.fetchval(got, placed.amazon_order_id) == status
        async with conn.transaction():  # a newer snapshot of an order whose groups have no version of their own
            await apply(conn, newer_snapshot)
        got = f'SELECT amount FROM "{gen.schema}".orders WHERE amazon_order_id = $1'
        assert await conn.fetchval(got, other.amazon_order_id) == 31
    finally:
        await conn.close()
