"""The life of a service process: database pool and migrations, outbox relay, optional consumer, the reader
of revoked sessions, and the FastAPI app with health, metrics and problem handlers. Each service's ``main``
builds one of these."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.metadata
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from unified_shared.auth import validator_from_settings
from unified_shared.config import ServiceSettings
from unified_shared.consumer import Handler, HandlerTable, IdempotentConsumer
from unified_shared.db import SHARED_COMPONENT, apply_migrations, create_pool
from unified_shared.http_headers import SecurityHeaders
from unified_shared.kafka import make_consumer, make_producer, make_reader
from unified_shared.logs import configure_logging
from unified_shared.outbox import OutboxRelay
from unified_shared.problems import install_problem_handlers
from unified_shared.requests import RequestContextMiddleware
from unified_shared.revocations import RevocationReader, RevocationSet
from unified_shared.tracing import configure_tracing

log = logging.getLogger(__name__)

# A consumer that has not polled for this long is reported not live (stuck group, dead task).
LIVENESS_POLL_WINDOW_S = 60.0
READINESS_DB_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class ConsumerSpec:
    """A consumer: a per-event ``handler`` or a ``handlers`` table (batch application, see consumer_apply)."""

    name: str
    topics: Sequence[str]
    handler: Handler | None = None
    handlers: HandlerTable | None = None
    dead_letter_scope: str | None = None


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations: Sequence[tuple[str, str]],
        publishes: bool = True,
        consumer: ConsumerSpec | None = None,
    ) -> None:
        self.settings = settings
        self.source = f"/services/{settings.service_name}"
        self.migrations = [SHARED_COMPONENT, *migrations]
        self.publishes = publishes
        self.consumer_spec = consumer
        self._pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.relay: OutboxRelay | None = None
        self.consumer: IdempotentConsumer | None = None
        # Every service refuses tokens whose session or membership ended (fed by identity.accounts.v1).
        self.revocations = RevocationSet()
        self.revocation_reader: RevocationReader | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: list[tuple[str, Callable[[], Coroutine[object, object, None]]]] = []
        self._readiness_details: list[Callable[[], dict[str, object]]] = []
        self._start_steps: list[Callable[[], Awaitable[object]]] = []
        self.started = False

    def on_start(self, step: Callable[[], Awaitable[object]]) -> None:
        """A start-up step (load the signing keys, set a gauge), run in order at the end of ``start`` once the
        pool, migrations, relay and consumer are up. Registered by the composition root after it built the
        handlers over this runtime's pool: no construction loop, no wrapped lifespan."""
        self._start_steps.append(step)

    def run_in_background(self, name: str, run: Callable[[], Coroutine[object, object, None]]) -> None:
        """A service's own long-running task (a scheduled import): started with the runtime, watched by
        liveness, cancelled at stop. Declared by the service's bootstrap."""
        self._background.append((name, run))

    def report_in_readiness(self, detail: Callable[[], dict[str, object]]) -> None:
        """Facts added to /health/ready (informative: they never make the instance unready)."""
        self._readiness_details.append(detail)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("service not started")
        return self._pool

    async def start(self) -> None:
        s = self.settings
        self._pool = await create_pool(s.database_url)
        async with self._pool.acquire() as conn:
            await apply_migrations(conn, list(self.migrations))
        if self.publishes or self.consumer_spec:
            self.producer = make_producer(
                s.kafka_bootstrap_servers, client_id=f"{s.service_name}-producer", security=s.kafka_security()
            )
            await self.producer.start()
        if self.publishes:
            assert self.producer is not None
            self.relay = OutboxRelay(
                self._pool,
                self.producer,
                source=self.source,
                poll_interval_s=s.relay_poll_interval_s,
                degraded_after_s=s.outbox_degraded_after_s,
                producer_factory=lambda: make_producer(
                    s.kafka_bootstrap_servers, client_id=f"{s.service_name}-producer", security=s.kafka_security()
                ),
            )
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        if self.consumer_spec is not None:
            assert self.producer is not None
            spec = self.consumer_spec
            group = s.consumer_group or spec.name
            kafka_consumer = make_consumer(
                s.kafka_bootstrap_servers,
                group_id=group,
                client_id=f"{s.service_name}-consumer",
                topics=[],
                security=s.kafka_security(),
            )
            self.consumer = IdempotentConsumer(
                self._pool,
                kafka_consumer,
                self.producer,
                name=group,
                topics=spec.topics,
                handler=spec.handler,
                handlers=spec.handlers,
                dead_letter_scope=spec.dead_letter_scope,
            )
            self.consumer.subscribe()
            await kafka_consumer.start()
            self._tasks.append(asyncio.create_task(self.consumer.run(), name="consumer"))
        revocations_id = f"{s.service_name}-revocations"
        self.revocation_reader = RevocationReader(
            s.kafka_bootstrap_servers,
            self.revocations,
            client_id=revocations_id,
            consumer_factory=lambda: make_reader(
                s.kafka_bootstrap_servers, client_id=revocations_id, security=s.kafka_security()
            ),
        )
        self._tasks.append(asyncio.create_task(self.revocation_reader.run(), name="revocation-reader"))
        for name, run in self._background:
            self._tasks.append(asyncio.create_task(run(), name=name))
        self.started = True
        for step in self._start_steps:
            await step()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.consumer.stop()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await self.producer.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        self.started = False

    def notify_relay(self) -> None:
        if self.relay is not None:
            self.relay.notify()

    # -- health -------------------------------------------------------------------------------------
    def liveness(self) -> tuple[bool, dict[str, object]]:
        detail: dict[str, object] = {}
        ok = True
        for task in self._tasks:
            if task.done():
                ok = False
                detail[task.get_name()] = "stopped"
        if self.consumer is not None and self.consumer.last_poll_monotonic is not None:
            age = time.monotonic() - self.consumer.last_poll_monotonic
            detail["consumer_last_poll_s"] = round(age, 1)
            if age > LIVENESS_POLL_WINDOW_S:
                ok = False
        return ok, detail

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        """Ready = this instance can serve its API now (started, database reachable): it turns ready the
        moment the database answers again. Events not flowing is reported apart, as ``degraded``."""
        detail: dict[str, object] = {}
        ok = self.started
        try:
            async with self.pool.acquire(timeout=READINESS_DB_TIMEOUT_S) as conn:
                await conn.fetchval("SELECT 1")
            detail["database"] = "ok"
        except Exception as exc:
            ok = False
            detail["database"] = f"{type(exc).__name__}: {exc}"
        if self.relay is not None:  # its state (backlog, age, quarantine) is detail, never readiness
            try:
                relay = await asyncio.wait_for(self.relay.status(), READINESS_DB_TIMEOUT_S)
                detail["outbox_relay"] = relay.to_json()
            except Exception as exc:
                detail["outbox_relay"] = {"state": "unknown", "error": f"{type(exc).__name__}: {exc}"}
        if self.revocation_reader is not None and not self.revocation_reader.caught_up:
            # Not ready before the revocations of the last token lifetime are known: it would accept them.
            ok = False
            detail["revocations"] = self.revocation_reader.status()
        degraded = self.degraded()
        detail["events"] = degraded or "flowing"
        detail["degraded"] = bool(degraded)
        if self.consumer is not None:
            detail["consumer_last_fetch_age_s"] = round(self.consumer.last_fetch_age_s(), 1)
        for more in self._readiness_details:
            detail.update(more())
        return ok, detail

    def degraded(self) -> dict[str, str]:
        """Why events are not flowing (relay cannot publish, consumer cannot fetch); empty when they are."""
        reasons: dict[str, str] = {}
        if self.relay is not None and (self.relay.degraded or self.relay.last_error is not None):
            # Degraded by the age of the oldest unpublished event (refreshed by the relay's watchdog and by
            # readiness), or at once when publishing fails.
            reasons["outbox_relay"] = self.relay.last_error or (
                f"oldest unpublished event older than {self.relay.degraded_after_s:g} s"
            )
        if self.consumer is not None and self.consumer.last_error is not None:
            reasons["consumer"] = self.consumer.last_error
        elif self.consumer is not None and not self.consumer.fetching():
            age = round(self.consumer.last_fetch_age_s(), 1)
            reasons["consumer"] = f"unable to fetch from the broker (no fetch answered for {age} s)"
        if self.revocation_reader is not None and self.revocation_reader.last_error is not None:
            reasons["revocations"] = self.revocation_reader.last_error
        return reasons


def service_version(settings: ServiceSettings) -> str:
    """The version of the package that defines the service's settings class (``unified_orders.settings`` ->
    unified-orders): what its OpenAPI document and image carry, so each service is versioned on its own."""
    package = type(settings).__module__.split(".")[0]
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def create_app(runtime: ServiceRuntime, *, title: str, version: str | None = None) -> FastAPI:
    """A FastAPI app whose lifespan starts and stops the runtime, with /health and /metrics.
    ``version`` defaults to the service package's own version."""
    version = version or service_version(runtime.settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        # Everything built at start-up lives as long as the process: out of the collector's sight, a full
        # collection no longer walks it (tens of milliseconds added to whichever request it lands in).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title=title, version=version, lifespan=lifespan)
    app.state.runtime = runtime
    s = runtime.settings
    app.state.token_validator = validator_from_settings(
        s.identity_issuer, s.token_audience, s.identity_jwks_url, revocations=runtime.revocations
    )
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, service=runtime.settings.service_name)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so even a 500 made by the one above has them

    @app.get("/health/live", tags=["health"])
    async def live() -> JSONResponse:
        ok, detail = runtime.liveness()
        return JSONResponse({"status": "live" if ok else "dead", **detail}, status_code=200 if ok else 503)

    @app.get("/health/ready", tags=["health"])
    async def ready() -> JSONResponse:
        ok, detail = await runtime.readiness()
        status = ("ready (degraded)" if detail.get("degraded") else "ready") if ok else "not ready"
        return JSONResponse({"status": status, **detail}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        if runtime.relay is not None and runtime.started:
            with contextlib.suppress(Exception):
                await runtime.relay.backlog()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


# How every service process is served (and the bench's hello baseline with it): libuv's event loop and the
# C HTTP parser, uvicorn's "standard" choice. The pure-Python pair (asyncio's selector loop, h11) cost about a
# third of a small request's CPU in the service process; asyncpg and aiokafka run on either loop.
UVICORN_OPTIONS: dict[str, object] = {"loop": "uvloop", "http": "httptools", "log_config": None, "access_log": False}


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run one service process (its own entry point calls this)."""
    configure_logging(settings.service_name, settings.log_level)
    configure_tracing(settings.service_name)
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        # Bounded, so that an orchestrator's grace period (longer than this) always sees a clean stop.
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
        **UVICORN_OPTIONS,  # type: ignore[arg-type]
    )
