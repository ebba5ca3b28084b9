"""Kafka clients built the same way everywhere (aiokafka under FastStream's broker, used directly here
because the relay and consumers need per-record keys, headers, offsets and explicit commits).

Every producer, consumer and admin client of the platform is made here, so the broker's security settings
(SASL/SCRAM over TLS locally, whatever a managed Kafka asks for in production) apply to all of them. A
factory given no ``security`` takes it from the environment: ``KAFKA_SECURITY_PROTOCOL``,
``KAFKA_SASL_MECHANISM``, ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD``, ``KAFKA_SSL_CAFILE``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How a client proves who it is to the broker and checks the broker's certificate."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: str | None = None
    # CA bundle that signed the broker's certificate; None: the system's trust store.
    ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if self.uses_sasl:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise ValueError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}")
            if not self.sasl_username or not self.sasl_password:
                raise ValueError(f"{self.protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
        env = os.environ if environ is None else environ
        return cls(
            protocol=env.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
            sasl_mechanism=env.get("KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512",
            sasl_username=env.get("KAFKA_SASL_USERNAME") or None,
            sasl_password=env.get("KAFKA_SASL_PASSWORD") or None,
            ssl_cafile=env.get("KAFKA_SSL_CAFILE") or None,
        )

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by aiokafka's producer, consumer and admin client."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_sasl:
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        if self.uses_tls:
            # Hostname checking stays on: the broker certificate names the address clients dial.
            kwargs["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        return kwargs

    def __repr__(self) -> str:  # never print the password
        return f"KafkaSecurity(protocol={self.protocol!r}, user={self.sasl_username!r}, cafile={self.ssl_cafile!r})"


def _security(security: KafkaSecurity | None) -> dict[str, Any]:
    return (security or KafkaSecurity.from_env()).client_kwargs()


def make_producer(bootstrap_servers: str, *, client_id: str, security: KafkaSecurity | None = None) -> AIOKafkaProducer:
    # Idempotent producer: acks=all and broker-side deduplication of retried sends.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=30000,
        **_security(security),
    )


# How every consumer and reader of the platform reads: only committed transactions, from the start of what
# it has not seen, committing its offsets itself (with its database transaction, or never for a reader).
_READING: dict[str, Any] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "isolation_level": "read_committed",
    "max_poll_records": 500,
}


def make_consumer(
    bootstrap_servers: str,
    *,
    group_id: str,
    client_id: str,
    topics: list[str],
    security: KafkaSecurity | None = None,
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        **_READING,
        **_security(security),
    )


def make_reader(bootstrap_servers: str, *, client_id: str, security: KafkaSecurity | None = None) -> AIOKafkaConsumer:
    """A consumer outside any group: the caller assigns partitions and seeks, nothing is committed. For what
    every process must read whole (the revocations on ``identity.accounts.v1``), end offsets, probes, and
    watching topics in tests."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        client_id=client_id,
        **_READING,
        **_security(security),
    )


def make_admin(bootstrap_servers: str, *, client_id: str, security: KafkaSecurity | None = None) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id, **_security(security))
