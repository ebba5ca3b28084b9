"""Fixtures for every test suite of the repository: the real Kafka broker and PostgreSQL.

Where they come from, in order: the environment (``KAFKA_BOOTSTRAP_SERVERS``, ``TEST_PG_ADMIN_DSN``;
``make infra-up`` starts both with the defaults below), else testcontainers when a Docker engine (or podman's
Docker-compatible API) answers. ``TEST_INFRA=testcontainers`` skips the first; the images are the project's
own (``TESTCONTAINERS_KAFKA_IMAGE``/``TESTCONTAINERS_POSTGRES_IMAGE``, set by deploy/images/testcontainers.sh)
or else public ones. With neither, integration tests fail and say what to start: never skipped silently.

The broker wants SASL/SCRAM over TLS: unless ``KAFKA_SECURITY_PROTOCOL`` is set, the tests' clients log in
as the admin principal with the settings and password ``make infra-up`` wrote into ``$US_STATE_DIR``
(``unified_shared.kafka`` reads them from the environment). Tests of the trust boundary log in as the
services' own principals (``unified_shared.testing.service_security``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

DEFAULT_KAFKA = "127.0.0.1:9092"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:55432/postgres"
HOW_TO_START = (
    "no Kafka/PostgreSQL reachable: run `make infra-up` (starts Kafka on 127.0.0.1:9092 and PostgreSQL on "
    "127.0.0.1:55432), or set KAFKA_BOOTSTRAP_SERVERS and TEST_PG_ADMIN_DSN, or provide a Docker engine "
    "for testcontainers"
)


def pytest_configure(config: pytest.Config) -> None:
    from unified_shared.local_secrets import use_local_admin_login

    if os.environ.get("TEST_INFRA") == "testcontainers":
        _plain_kafka_client()  # before collection: the ACL tests see an anonymous broker and skip
        return
    use_local_admin_login()


def _plain_kafka_client() -> None:
    """Testcontainers' broker takes anonymous clients."""
    os.environ["KAFKA_SECURITY_PROTOCOL"] = "PLAINTEXT"
    for name in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CAFILE"):
        os.environ.pop(name, None)


def _reachable(hostport: str) -> bool:
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def _docker_available() -> bool:
    try:
        import docker  # type: ignore[import-not-found]

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


class Infra:
    def __init__(self, kafka: str, pg_admin_dsn: str) -> None:
        self.kafka = kafka
        self.pg_admin_dsn = pg_admin_dsn

    def dsn_for(self, database: str) -> str:
        parts = urlsplit(self.pg_admin_dsn)
        return urlunsplit(parts._replace(path=f"/{database}"))


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _project_containers(kafka_image: str, pg_image: str) -> Iterator[Infra]:
    """Kafka and PostgreSQL from the images the project builds (deploy/images/build.py --test-infra), on the
    host network: the advertised broker address is then simply 127.0.0.1:<port>, with no port mapping."""
    from testcontainers.core.container import DockerContainer  # type: ignore[import-not-found]
    from testcontainers.core.waiting_utils import wait_for_logs  # type: ignore[import-not-found]

    kafka_port, controller_port, pg_port = _free_ports(3)
    kafka = (
        DockerContainer(kafka_image)
        .with_env("KAFKA_PORT", str(kafka_port))
        .with_env("KAFKA_CONTROLLER_PORT", str(controller_port))
        .with_kwargs(network_mode="host")
    )
    pg = DockerContainer(pg_image).with_env("PG_PORT", str(pg_port)).with_kwargs(network_mode="host")
    with kafka, pg:
        wait_for_logs(pg, "ready to accept connections", timeout=120)
        wait_for_logs(kafka, "Kafka Server started", timeout=180)
        from unified_shared.topics import create_topics

        bootstrap = f"127.0.0.1:{kafka_port}"
        asyncio.run(create_topics(bootstrap))
        yield Infra(bootstrap, f"postgresql://postgres@127.0.0.1:{pg_port}/postgres")


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA)
    pg = os.environ.get("TEST_PG_ADMIN_DSN", DEFAULT_PG)
    pg_hostport = urlsplit(pg).netloc.rpartition("@")[2]
    containers_only = os.environ.get("TEST_INFRA") == "testcontainers"
    if not containers_only and _reachable(kafka.split(",")[0]) and _reachable(pg_hostport):
        from unified_shared.topics import create_topics

        asyncio.run(create_topics(kafka))
        yield Infra(kafka, pg)
        return
    if _docker_available() and os.environ.get("TESTCONTAINERS_KAFKA_IMAGE"):  # the project's own images
        yield from _project_containers(
            os.environ["TESTCONTAINERS_KAFKA_IMAGE"], os.environ.get("TESTCONTAINERS_POSTGRES_IMAGE", "")
        )
        return
    if _docker_available():  # a developer laptop with Docker: throwaway containers from public images
        try:
            from testcontainers.community.kafka import KafkaContainer  # type: ignore[import-not-found]
        except ImportError:
            from testcontainers.kafka import KafkaContainer  # type: ignore[import-not-found,no-redef]
        from testcontainers.postgres import PostgresContainer  # type: ignore[import-not-found]

        _plain_kafka_client()

        with (
            KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as k,
            PostgresContainer("postgres:16-alpine", driver=None) as p,
        ):
            from unified_shared.topics import create_topics

            asyncio.run(create_topics(k.get_bootstrap_server()))
            yield Infra(k.get_bootstrap_server(), p.get_connection_url())
        return
    pytest.fail(HOW_TO_START, pytrace=False)


async def _create_db(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_db(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def fresh_db(infra: Infra) -> Iterator[str]:
    """A new, empty database for one test; its DSN. Dropped afterwards unless KEEP_TEST_DB is set."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create_db(infra.pg_admin_dsn, name))
    yield infra.dsn_for(name)
    if not os.environ.get("KEEP_TEST_DB"):
        asyncio.run(_drop_db(infra.pg_admin_dsn, name))


@pytest.fixture
def make_db(infra: Infra) -> Iterator[object]:
    """Async factory of fresh databases for one test (``dsn = await make_db()``), dropped afterwards."""
    created: list[str] = []

    async def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        await _create_db(infra.pg_admin_dsn, name)
        created.append(name)
        return infra.dsn_for(name)

    yield make
    if not os.environ.get("KEEP_TEST_DB"):
        for name in created:
            asyncio.run(_drop_db(infra.pg_admin_dsn, name))


@pytest.fixture
def kafka_bootstrap(infra: Infra) -> str:
    return infra.kafka
