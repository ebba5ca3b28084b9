"""Helpers for tests against the real broker and database (used by every service's test suite)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from unified_shared.envelope import Envelope
from unified_shared.kafka import KafkaSecurity, make_reader
from unified_shared.local_secrets import kafka_client_env, service_env
from unified_shared.topics import access_of


def service_security(service: str) -> KafkaSecurity:
    """The Kafka login of one service's own principal (from the state folder), for tests of its ACLs."""
    return principal_security(access_of(service).principal)


def principal_security(principal: str) -> KafkaSecurity:
    """The Kafka login of any principal of ``topics.ALL_ACCESS`` (a service's or a downstream team's)."""
    return KafkaSecurity.from_env(kafka_client_env(principal))


def service_process_env(service: str) -> dict[str, str]:
    """Environment for a service started as its own process in a test: its principal and its secrets.

    Against a broker that takes anonymous clients (testcontainers), nothing: the process inherits that."""
    if KafkaSecurity.from_env().protocol == "PLAINTEXT":
        return {}
    env = service_env(service)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return env


T = TypeVar("T")


@contextlib.asynccontextmanager
async def serve_app(app: FastAPI, *, port: int = 0, timeout_s: float = 60.0) -> AsyncIterator[str]:
    """Run ``app`` (with its lifespan) on a real socket; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start")
        await asyncio.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        await task


async def eventually(
    check: Callable[[], Awaitable[T | None]], what: str, *, timeout_s: float = 60.0, every_s: float = 0.05
) -> T:
    """Poll ``check`` until it returns something truthy (returned), or fail naming ``what`` at the deadline.

    For tests: wait for a condition with a deadline, never for a fixed time."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s")
        await asyncio.sleep(every_s)


@dataclass(frozen=True, slots=True)
class SeenRecord:
    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    value: Any

    @property
    def envelope(self) -> Envelope:
        return Envelope.from_headers([(k, v.encode()) for k, v in self.headers.items()])


class TopicWatcher:
    """Reads topics from their current end (or the beginning) and collects records matching a filter."""

    def __init__(self, bootstrap: str, topics: list[str], *, from_beginning: bool = False) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.from_beginning = from_beginning
        self.consumer: AIOKafkaConsumer | None = None
        self.seen: list[SeenRecord] = []

    async def __aenter__(self) -> TopicWatcher:
        self.consumer = make_reader(self.bootstrap, client_id="test-topic-watcher")
        await self.consumer.start()
        parts: list[TopicPartition] = []
        for topic in self.topics:
            for p in self.consumer.partitions_for_topic(topic) or await self._partitions(topic):
                parts.append(TopicPartition(topic, p))
        self.consumer.assign(parts)
        if self.from_beginning:
            await self.consumer.seek_to_beginning(*parts)
        else:
            await self.consumer.seek_to_end(*parts)
            for tp in parts:  # resolve the end position now, before the test produces anything
                await self.consumer.position(tp)
        return self

    async def _partitions(self, topic: str) -> set[int]:
        assert self.consumer is not None
        await self.consumer._client.force_metadata_update()
        return self.consumer.partitions_for_topic(topic) or set()

    async def __aexit__(self, *exc: object) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    async def collect(
        self, predicate: Callable[[SeenRecord], bool], *, count: int, timeout_s: float = 20.0, settle_s: float = 0.0
    ) -> list[SeenRecord]:
        """Wait until ``count`` matching records arrived (then ``settle_s`` more for extras); return all matches."""
        assert self.consumer is not None
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    headers = {k: v.decode() for k, v in (r.headers or [])}
                    try:
                        value = json.loads(r.value) if r.value else None
                    except ValueError:  # a poison record: keep its bytes
                        value = r.value
                    self.seen.append(
                        SeenRecord(r.topic, r.partition, r.offset, r.key.decode() if r.key else None, headers, value)
                    )
            matches = [s for s in self.seen if predicate(s)]
            now = time.monotonic()
            if len(matches) >= count:
                if settle_until is None:
                    settle_until = now + settle_s
                if now >= settle_until:
                    return matches
            if now > deadline:
                return matches

    async def before_marker(self, key: str, field: str, marker: str, *, timeout_s: float = 30.0) -> list[SeenRecord]:
        """Every record of ``key`` published before the marker (the first whose value has ``field == marker``),
        the marker excluded. One key -> one partition, published in commit order: once the marker (committed
        last) has arrived, everything committed before it has arrived too. No sleeping involved."""
        arrived = await self.collect(
            lambda r: r.key == key and r.value.get(field) == marker, count=1, timeout_s=timeout_s
        )
        assert arrived, f"the marker event ({field}={marker}) never arrived"
        return [r for r in self.seen if r.key == key and r.value.get(field) != marker]


class TestIssuer:
    """Signs access tokens shaped like the identity service's, for tests of the other services.

    Its JWKS is served over real HTTP by ``serve()``; services validate exactly as in production.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, issuer: str = "http://identity.test", audience: str = "unified-seller") -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.issuer = issuer
        self.audience = audience
        self.kid = "test-key-1"
        self._key = Ed25519PrivateKey.generate()

    def jwks(self) -> dict[str, Any]:
        import jwt

        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "EdDSA"})
        return {"keys": [jwk]}

    def mint(
        self,
        *,
        account_id: Any,
        user_id: Any = None,
        role: str = "owner",
        permissions: list[str] | None = None,
        marketplaces: Any = "*",
        ttl_s: int = 600,
        **extra: Any,
    ) -> str:
        import uuid as _uuid

        import jwt

        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id or _uuid.uuid4()),
            "iat": now,
            "exp": now + ttl_s,
            "jti": _uuid.uuid4().hex,
            "sid": str(_uuid.uuid4()),
            "account_id": str(account_id),
            "role": role,
            "permissions": permissions if permissions is not None else ["orders", "messages", "reports", "billing"],
            "marketplaces": marketplaces if marketplaces == "*" else list(marketplaces),
            **extra,
        }
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self.kid})

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Serve the JWKS; yields its URL (set it as the service's ``identity_jwks_url``)."""
        app = FastAPI()
        jwks = self.jwks()

        @app.get("/.well-known/jwks.json")
        async def get_jwks() -> dict[str, Any]:
            return jwks

        async with serve_app(app) as base:
            yield f"{base}/.well-known/jwks.json"


async def publish_events(bootstrap: str, *events: Any, source: str = "/services/test") -> None:
    """Publish events as a service's relay does (CloudEvents headers, key = the event's partition key): for tests
    of consumers that must learn from another service's topic."""
    import datetime as _dt
    import uuid as _uuid

    from unified_shared.kafka import make_producer

    producer = make_producer(bootstrap, client_id="test-publisher")
    await producer.start()
    try:
        for event in events:
            key = event.partition_key()
            envelope = Envelope(
                id=_uuid.uuid4(),
                source=source,
                type=event.ce_type(),
                time=_dt.datetime.now(_dt.UTC),
                subject=key,
                partitionkey=key,
            )
            await producer.send_and_wait(
                event.TOPIC, value=event.to_json_bytes(), key=key.encode(), headers=envelope.to_headers()
            )
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def regional_instances(
    bootstrap: Callable[..., FastAPI],
    settings: Callable[..., Any],
    *,
    issuer: TestIssuer,
    jwks_url: str,
    make_db: Callable[[], Awaitable[str]],
    kafka_bootstrap: str,
) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """``start(region="EU", *, clock=..., participation_required=False, **settings)``: one instance of a regional
    service (built by its ``bootstrap``) on a fresh database and a real socket, trusting ``issuer``; its URL.

    The gate on opened marketplaces is off unless asked for: suites that test it say so, the others use accounts
    that never went through regions. Everything started stops when the block ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            region: str = "EU", *, clock: Any = None, participation_required: bool = False, **overrides: Any
        ) -> str:
            config = settings(
                participation_required=participation_required,
                **overrides,
                region=region,
                database_url=await make_db(),
                kafka_bootstrap_servers=kafka_bootstrap,
                http_port=0,
                identity_issuer=issuer.issuer,
                identity_jwks_url=jwks_url,
                relay_poll_interval_s=0.05,
            )
            app = bootstrap(config) if clock is None else bootstrap(config, clock=clock)
            base: str = await stack.enter_async_context(serve_app(app))
            return base

        yield start


def issuer_fixture() -> Any:
    """The ``issuer`` fixture of a service's conftest: a ``TestIssuer`` serving its JWKS, and the JWKS URL."""
    import pytest  # only tests import this module's fixtures; the library does not depend on pytest

    @pytest.fixture(name="issuer")
    async def issuer() -> AsyncIterator[tuple[TestIssuer, str]]:
        test_issuer = TestIssuer()
        async with test_issuer.serve() as jwks_url:
            yield test_issuer, jwks_url

    return issuer


def regional_fixture(name: str, bootstrap: Callable[..., FastAPI], settings: Callable[..., Any]) -> Any:
    """A fixture ``name`` giving ``start`` of ``regional_instances`` (needs the ``issuer`` fixture)."""
    import pytest

    @pytest.fixture(name=name)
    async def start(
        issuer: tuple[TestIssuer, str], make_db: Any, kafka_bootstrap: str
    ) -> AsyncIterator[Callable[..., Awaitable[str]]]:
        test_issuer, jwks_url = issuer
        async with regional_instances(
            bootstrap, settings, issuer=test_issuer, jwks_url=jwks_url, make_db=make_db, kafka_bootstrap=kafka_bootstrap
        ) as started:
            yield started

    return start
