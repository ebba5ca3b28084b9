"""The bus is closed: the broker refuses anonymous clients, and each principal (a service's or a downstream
team's) writes only the topics ``ALL_ACCESS`` gives it, reads only what it consumes and joins only its own groups.

Runs against the local broker made by ``make infra-up`` (SASL/SCRAM over TLS, ACLs from the table), logging
in as the services' own principals from the state folder.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from unified_shared.envelope import Envelope
from unified_shared.kafka import KafkaSecurity, make_consumer, make_producer, make_reader
from unified_shared.testing import principal_security, service_security
from unified_shared.topics import (
    ALL_ACCESS,
    BILLING_INVOICES,
    BUYER_MESSAGES,
    ORDERS,
    TEAM_ACCESS,
    TOPICS,
    access_of,
    dlq,
)

pytestmark = pytest.mark.skipif(
    KafkaSecurity.from_env().protocol == "PLAINTEXT",
    reason="the broker in use takes anonymous clients (testcontainers): no ACLs to test",
)

EVENT_TOPICS = [spec.name for spec in TOPICS if not spec.name.endswith(".dlq")]


@pytest.fixture
async def producer_as() -> AsyncIterator[object]:
    started: list[AIOKafkaProducer] = []

    async def make(name: str, bootstrap: str) -> AIOKafkaProducer:
        """A producer logged in as a service (``orders``) or as any principal of the table (``team-...``)."""
        security = principal_security(name) if name.startswith(("svc-", "team-")) else service_security(name)
        producer = make_producer(bootstrap, client_id=f"acl-test-{name}", security=security)
        await producer.start()
        started.append(producer)
        return producer

    yield make
    for producer in started:
        await producer.stop()


def probe(key: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A record every consumer skips as an unknown type (the tests' broker is shared by the suite)."""
    env = Envelope(
        id=uuid.uuid4(),
        source="/services/acl-test",
        type="unifiedseller.test.AclProbe.v1",
        time=datetime.now(UTC),
        subject="acl-probe",
        partitionkey=key,
    )
    return b"{}", env.to_headers()


@pytest.mark.parametrize("case", ["plaintext", "tls-without-sasl", "known-user-wrong-password", "unknown-user"])
async def test_a_client_without_valid_credentials_is_refused(kafka_bootstrap: str, case: str) -> None:
    own = KafkaSecurity.from_env()
    orders = access_of("orders").principal
    security = {
        "plaintext": KafkaSecurity(protocol="PLAINTEXT"),
        "tls-without-sasl": KafkaSecurity(protocol="SSL", ssl_cafile=own.ssl_cafile),
        "known-user-wrong-password": KafkaSecurity(
            protocol=own.protocol, sasl_username=orders, sasl_password="x" * 40, ssl_cafile=own.ssl_cafile
        ),
        "unknown-user": KafkaSecurity(
            protocol=own.protocol, sasl_username="svc-nobody", sasl_password="x" * 40, ssl_cafile=own.ssl_cafile
        ),
    }[case]
    producer = make_producer(kafka_bootstrap, client_id="acl-test-anonymous", security=security)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    reader = make_reader(kafka_bootstrap, client_id="acl-test-anonymous", security=security)
    with pytest.raises(KafkaConnectionError):
        await reader.start()
    await reader.stop()


async def test_orders_cannot_write_billing_invoices(kafka_bootstrap: str, producer_as) -> None:
    orders = await producer_as("orders", kafka_bootstrap)
    value, headers = probe(str(uuid.uuid4()))
    with pytest.raises(TopicAuthorizationFailedError):
        await orders.send_and_wait(BILLING_INVOICES, value=value, key=b"acl-test", headers=headers)


async def test_seller_view_writes_no_event_topic_only_the_dead_letters_of_what_it_consumes(
    kafka_bootstrap: str, producer_as
) -> None:
    access = access_of("seller_view")
    assert set(access.writes) == {dlq(topic) for topic in access.consumes}
    view = await producer_as("seller_view", kafka_bootstrap)
    for topic in EVENT_TOPICS:
        value, headers = probe(str(uuid.uuid4()))
        with pytest.raises(TopicAuthorizationFailedError):
            await view.send_and_wait(topic, value=value, key=b"acl-test", headers=headers)
    value, headers = probe(str(uuid.uuid4()))
    await view.send_and_wait(dlq(ORDERS), value=value, key=b"acl-test", headers=headers)


ACCESS = {access.principal: access for access in ALL_ACCESS}


@pytest.mark.parametrize("principal", list(ACCESS))
async def test_every_principal_writes_only_what_the_table_allows(kafka_bootstrap: str, producer_as, principal) -> None:
    allowed = set(ACCESS[principal].writes)
    if not allowed:  # a producer with no Write anywhere cannot even get an idempotent producer id
        return
    producer = await producer_as(principal, kafka_bootstrap)
    for topic in sorted({spec.name for spec in TOPICS} - allowed):
        value, headers = probe(str(uuid.uuid4()))
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(topic, value=value, key=b"acl-test", headers=headers)


@pytest.mark.parametrize("principal", list(ACCESS))
async def test_every_principal_reads_only_what_it_consumes(kafka_bootstrap: str, principal: str) -> None:
    access = ACCESS[principal]
    for topic in sorted({spec.name for spec in TOPICS} - set(access.reads)):
        consumer = make_consumer(
            kafka_bootstrap,
            group_id=f"{access.group_prefix}-acl-test-{uuid.uuid4().hex[:8]}",
            client_id=f"acl-test-{principal}",
            topics=[topic],
            security=principal_security(principal),
        )
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await consumer.start()  # refused here unless it may write (Write implies Describe) ...
                await consumer.getmany(timeout_ms=10_000)  # ... and then at the first fetch
        finally:
            await consumer.stop()


async def test_allowed_write_and_read_work_and_groups_are_the_services_own(kafka_bootstrap: str, producer_as) -> None:
    key = f"acl-test-{uuid.uuid4()}"
    orders = await producer_as("orders", kafka_bootstrap)
    value, headers = probe(key)
    sent = await orders.send_and_wait(ORDERS, value=value, key=key.encode(), headers=headers)

    view = service_security("seller_view")
    await read_and_commit_in_group(kafka_bootstrap, view, f"seller_view-acl-test-{uuid.uuid4().hex[:8]}", sent, key)
    await refused_group(kafka_bootstrap, view, f"billing-acl-test-{uuid.uuid4().hex[:8]}")


async def read_and_commit_in_group(bootstrap: str, security: KafkaSecurity, group: str, sent: Any, key: str) -> None:
    """Read the record ``sent`` to ORDERS and commit its offset in ``group``: both allowed."""
    consumer = make_consumer(bootstrap, group_id=group, client_id="acl-test", topics=[], security=security)
    await consumer.start()
    try:
        tp = TopicPartition(ORDERS, sent.partition)
        consumer.assign([tp])
        consumer.seek(tp, sent.offset)
        batch = await consumer.getmany(tp, timeout_ms=10_000)
        assert [r.key for r in batch.get(tp, [])][:1] == [key.encode()]
        await consumer.commit({tp: sent.offset + 1})
    finally:
        await consumer.stop()


async def refused_group(bootstrap: str, security: KafkaSecurity, group: str) -> None:
    """Joining ``group`` (another principal's) is refused."""
    stranger = make_consumer(bootstrap, group_id=group, client_id="acl-test", topics=[ORDERS], security=security)
    with pytest.raises(GroupAuthorizationFailedError):
        await stranger.start()
        await stranger.getmany(timeout_ms=5_000)
    await stranger.stop()


@pytest.mark.parametrize("team", TEAM_ACCESS, ids=lambda t: t.team)
async def test_a_downstream_team_reads_its_topics_in_its_own_groups_and_writes_only_its_own_dlq(
    kafka_bootstrap: str, producer_as, team
) -> None:
    """What docs/consumers.md promises a team: its topics, groups under its name, its own dead-letter topic."""
    key = f"acl-test-{uuid.uuid4()}"
    value, headers = probe(key)
    sent = await (await producer_as("orders", kafka_bootstrap)).send_and_wait(
        ORDERS, value=value, key=key.encode(), headers=headers
    )
    security = principal_security(team.principal)
    await read_and_commit_in_group(kafka_bootstrap, security, f"{team.team}-acl-test", sent, key)
    own = await producer_as(team.principal, kafka_bootstrap)
    await own.send_and_wait(team.dead_letters, value=value, key=key.encode(), headers=headers)
    for topic in (ORDERS, dlq(ORDERS), dlq(BUYER_MESSAGES)):  # not the platform's topics, nor their DLQs
        with pytest.raises(TopicAuthorizationFailedError):
            await own.send_and_wait(topic, value=value, key=key.encode(), headers=headers)
    await refused_group(kafka_bootstrap, security, "seller_view-acl-test-team")
