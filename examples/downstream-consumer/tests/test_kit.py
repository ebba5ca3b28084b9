"""The downstream consumer kit against the real broker and PostgreSQL: a story with redelivered records, a
poison record and an unknown event type is applied exactly once in effect; a restart and a full replay under
a new group change nothing; the poison records sit in the kit's own DLQ."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from downstream_consumer.app import Counters, build
from downstream_consumer.settings import Settings
from unified_shared.contracts.orders import Money, OrderPlaced, OrderRefunded, OrderStatusChanged
from unified_shared.envelope import Envelope
from unified_shared.events import Event
from unified_shared.kafka import make_producer
from unified_shared.testing import TopicWatcher
from unified_shared.topics import TEAM_ACCESS, TopicSpec, create_topics

US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"


def _story() -> list[Event]:
    """Three accounts, orders in two marketplaces, a cancellation and refunds."""
    events: list[Event] = []
    at = datetime(2026, 10, 1, tzinfo=UTC)
    for a in range(3):
        account = uuid.uuid4()
        for n in range(6):
            market, currency = (US, "USD") if n % 2 == 0 else (DE, "EUR")
            order_id = f"{100 + a}-{1000000 + n:07d}-{2000000 + n:07d}"
            t = at + timedelta(hours=n)
            base: dict[str, Any] = {"account_id": account, "marketplace_id": market, "amazon_order_id": order_id}
            region = "NA" if market == US else "EU"
            events.append(
                OrderPlaced(
                    **base,
                    region=region,
                    purchase_date=t,
                    last_update_date=t,
                    order_status="Unshipped",
                    fulfillment_channel="MFN",
                    order_total=Money(currency_code=currency, amount=Decimal(f"{10 + n}.{a}9")),
                    number_of_items=1,
                )
            )
            if n == 3:
                events.append(
                    OrderStatusChanged(
                        **base, region=region, from_status="Unshipped", to_status="Canceled", last_update_date=t
                    )
                )
            if n == 4:
                events.append(
                    OrderRefunded(
                        **base,
                        region=region,
                        amount=Money(currency_code=currency, amount=Decimal("2.50")),
                        refunded_at=t,
                        last_update_date=t,
                    )
                )
    return events


def _expected(events: list[Event]) -> dict[tuple[str, str, str], tuple[int, Decimal, Decimal, int]]:
    rows: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [0, Decimal(0), Decimal(0), 0])
    currency_of: dict[tuple[str, str], str] = {}
    for e in events:
        if isinstance(e, OrderPlaced):
            key = (str(e.account_id), e.marketplace_id, e.order_total.currency_code)
            currency_of[(str(e.account_id), e.marketplace_id)] = e.order_total.currency_code
            rows[key][0] += 1
            rows[key][1] += e.order_total.amount
        elif isinstance(e, OrderRefunded):
            rows[(str(e.account_id), e.marketplace_id, e.amount.currency_code)][2] += e.amount.amount
        elif isinstance(e, OrderStatusChanged):
            account = str(e.account_id)
            rows[(account, e.marketplace_id, currency_of[(account, e.marketplace_id)])][3] += 1
    return {k: (v[0], v[1], v[2], v[3]) for k, v in rows.items()}


def _record(event: Event) -> tuple[bytes, list[tuple[str, bytes]]]:
    envelope = Envelope(
        id=uuid.uuid4(),
        source="/services/orders-na",
        type=event.ce_type(),
        time=datetime.now(UTC),
        subject=f"order:{event.partition_key()}",
        partitionkey=event.partition_key(),
        sequence=1,
    )
    return event.to_json_bytes(), envelope.to_headers()


async def _wait(condition: Any, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _run_until(settings: Settings, condition: Any, counters: Counters) -> None:
    app = build(settings, {}, counters)
    await app.start()
    try:
        await _wait(lambda: condition(counters), "the consumer")
    finally:
        await app.stop()


async def _sales(dsn: str) -> dict[tuple[str, str, str], tuple[int, Decimal, Decimal, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT * FROM sales")
    finally:
        await conn.close()
    return {
        (str(r["account_id"]), r["marketplace_id"], r["currency"]): (
            r["orders"],
            r["gross"],
            r["refunded"],
            r["canceled"],
        )
        for r in rows
    }


async def test_story_applied_exactly_once_in_effect_with_own_dlq(kafka_bootstrap: str, fresh_db: str) -> None:
    run = uuid.uuid4().hex[:8]
    topic, dlq = f"kit-{run}.orders", f"kit-{run}.dlq"
    await create_topics(kafka_bootstrap, [TopicSpec(topic, 3), TopicSpec(dlq, 1)])
    story = _story()
    producer = make_producer(kafka_bootstrap, client_id=f"kit-test-{run}")
    await producer.start()
    try:
        records = [(e.partition_key().encode(), *_record(e)) for e in story]
        for key, value, headers in records:
            await producer.send(topic, value=value, key=key, headers=headers)
        for key, value, headers in records[::5]:  # redelivered: the same ce_id a second time
            await producer.send(topic, value=value, key=key, headers=headers)
        poison_key = records[0][0]
        await producer.send(
            topic,
            value=b'{"not": "an order"}',
            key=poison_key,
            headers=[*records[0][2][:3], ("ce_type", b"unifiedseller.orders.OrderPlaced.v1"), *records[0][2][4:]],
        )
        await producer.send(topic, value=b"no envelope at all", key=poison_key, headers=[])
        unknown = [(k, v if k != "ce_type" else b"unifiedseller.orders.OrderTeleported.v1") for k, v in records[1][2]]
        await producer.send(topic, value=b"{}", key=poison_key, headers=unknown)
        await producer.flush()
    finally:
        await producer.stop()

    settings = dataclasses.replace(  # the broker login from the environment, as the kit itself reads it
        Settings.from_env(),
        bootstrap_servers=kafka_bootstrap,
        group_id=f"kit-{run}",
        topics=(topic,),
        dlq_topic=dlq,
        database_url=fresh_db,
    )
    first = Counters()
    total = len(records) + len(records[::5]) + 3
    await _run_until(settings, lambda c: c.applied + c.duplicates + c.skipped + len(c.dead_lettered) >= total, first)
    assert (first.applied, first.duplicates, first.skipped, len(first.dead_lettered)) == (
        len(story),
        len(records[::5]),
        1,
        2,
    )
    assert await _sales(fresh_db) == _expected(story)

    # Restart with the same group: offsets were committed after each change, so only a new event arrives.
    late = OrderPlaced(**{**story[0].model_dump(), "amazon_order_id": "999-0000001-0000001"})
    producer = make_producer(kafka_bootstrap, client_id=f"kit-test-{run}-late")
    await producer.start()
    try:
        _, value, headers = (late.partition_key().encode(), *_record(late))
        await producer.send_and_wait(topic, value=value, key=late.partition_key().encode(), headers=headers)
    finally:
        await producer.stop()
    again = Counters()
    await _run_until(settings, lambda c: c.applied >= 1, again)
    assert (again.applied, again.duplicates, len(again.dead_lettered)) == (1, 0, 0)
    story.append(late)

    # Full replay under a new group into the same ledger: every event is a duplicate, the model unchanged.
    replay = Counters()
    replay_settings = dataclasses.replace(settings, group_id=f"kit-{run}-replay")
    await _run_until(replay_settings, lambda c: c.duplicates >= len(story), replay)
    assert replay.applied == 0
    assert await _sales(fresh_db) == _expected(story)

    async with TopicWatcher(kafka_bootstrap, [dlq], from_beginning=True) as watcher:
        dead = await watcher.collect(lambda r: True, count=2, settle_s=1.0)
        assert len(dead) == 2
        assert {r.headers["dlq_original_topic"] for r in watcher.seen} == {topic}


def test_the_kit_defaults_are_what_its_team_principal_may_do() -> None:
    """The kit runs as ``team-downstream-sales-ledger``: its default group, DLQ and topics are within that row
    of TEAM_ACCESS (else it starts, then is refused by the broker)."""
    (team,) = [t for t in TEAM_ACCESS if t.team == "downstream-sales-ledger"]
    settings = Settings()
    assert settings.group_id.startswith(team.group_prefix)
    assert (settings.dlq_topic,) == team.writes
    assert set(settings.topics) <= set(team.reads)
