"""One trace spans two services: the HTTP request of one service, its event-store append, the relay's
publish and the Kafka record (ce_traceparent), and the consumer of another service, with an in-memory
exporter on the real PostgreSQL and Kafka."""

from __future__ import annotations

import time
from collections.abc import Iterator
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from unified_shared import eventstore
from unified_shared.outbox import OutboxRelay
from unified_shared.problems import install_problem_handlers
from unified_shared.requests import RequestContextMiddleware
from unified_shared.tracing import SERVICE_ATTRIBUTE

from .consumer_support import make_consumer_for, totals
from .plumbing_support import AmountAdded


class _Switch(SpanProcessor):
    """Forwards finished spans only while a test listens (the provider stays installed for the session)."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.on = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.inner.on_end(span)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    switch = _Switch(SimpleSpanProcessor(exporter))
    provider.add_span_processor(switch)
    switch.on = True
    yield exporter
    switch.on = False


def _orders_app(db: asyncpg.Pool) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, service="orders-test")

    @app.post("/accounts/{account_id}/amounts")
    async def add(account_id: UUID) -> dict[str, str]:
        async with db.acquire() as conn, conn.transaction():
            await eventstore.append(conn, f"amounts:{account_id}", 0, [AmountAdded(account_id=account_id, amount=7)])
        return {"ok": "yes"}

    return app


async def test_one_trace_spans_the_request_the_relay_and_another_services_consumer(
    spans: InMemorySpanExporter, pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    account = uuid4()
    transport = httpx.ASGITransport(app=_orders_app(pool))
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        assert (await client.post(f"/accounts/{account}/amounts")).status_code == 200
    stored = await pool.fetchval("SELECT traceparent FROM event_store WHERE stream_id = $1", f"amounts:{account}")
    assert stored is not None, "the append recorded no traceparent"

    relay = OutboxRelay(pool, producer, source="/services/orders-test", name=f"trace-{account.hex[:8]}")
    while await relay.publish_once(wait_s=2):
        pass
    consumer = await make_consumer_for(pool, kafka_bootstrap, producer, f"seller-view-trace-{account.hex[:8]}")
    try:
        deadline = time.monotonic() + 60
        while (await totals(pool, account))[1] < 1:
            assert time.monotonic() < deadline, "the consumer never applied the event"
            await consumer.poll_once()
    finally:
        await consumer.consumer.stop()

    trace_id = int(stored.split("-")[1], 16)
    ours = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    by_kind = {s.kind: s for s in ours}
    server, publish, consume = by_kind[SpanKind.SERVER], by_kind[SpanKind.PRODUCER], by_kind[SpanKind.CONSUMER]
    assert server.attributes[SERVICE_ATTRIBUTE] == "orders-test"
    assert publish.attributes[SERVICE_ATTRIBUTE] == "/services/orders-test"
    assert consume.attributes[SERVICE_ATTRIBUTE].startswith("seller-view-trace")
    parent_of = {s.context.span_id: s.parent.span_id if s.parent else None for s in ours}

    def ancestors(span_id: int | None) -> list[int]:
        chain = []
        while span_id is not None:
            chain.append(span_id)
            span_id = parent_of.get(span_id)
        return chain

    # request -> (the endpoint, where the append ran) -> relay publish -> the other service's consumer
    assert server.context.span_id in ancestors(publish.context.span_id)
    assert consume.parent is not None and consume.parent.span_id == publish.context.span_id
    assert server.name == "POST /accounts/{account_id}/amounts"
