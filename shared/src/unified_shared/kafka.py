"""Kafka clients built the same way everywhere (aiokafka under FastStream's broker, used directly here
because the relay and consumers need per-record keys, headers, offsets and explicit commits)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


def make_producer(bootstrap_servers: str, *, client_id: str) -> AIOKafkaProducer:
    # Idempotent producer: acks=all and broker-side deduplication of retried sends.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=30000,
    )


def make_consumer(bootstrap_servers: str, *, group_id: str, client_id: str, topics: list[str]) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=500,
    )


def make_reader(bootstrap_servers: str, *, client_id: str) -> AIOKafkaConsumer:
    """A consumer outside any group: the caller assigns partitions and seeks, nothing is committed. For what
    every process must read whole (the revocations on ``identity.accounts.v1``)."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=500,
    )
