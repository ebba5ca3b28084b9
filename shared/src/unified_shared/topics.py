"""Kafka topics declared as code, and the command that creates them (the broker's auto-create is off).

Event topics keep their whole history (retention -1): the unified view is rebuilt by replaying them.
Run: ``python -m unified_shared.topics --bootstrap 127.0.0.1:9092``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass, field

from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from unified_shared.kafka import make_admin

IDENTITY_ACCOUNTS = "identity.accounts.v1"
REGIONS_SUBSCRIPTIONS = "regions.subscriptions.v1"
REGIONS_FX_RATES = "regions.fx-rates.v1"
ORDERS = "orders.orders.v1"
BUYER_MESSAGES = "messages.buyer-messages.v1"
BILLING_INVOICES = "billing.invoices.v1"
LISTINGS_OFFERS = "listings.offers.v1"

_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int = -1
    cleanup_policy: str = "delete"
    extra: dict[str, str] = field(default_factory=dict)

    def configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy, **self.extra}


def _with_dlq(name: str, partitions: int) -> list[TopicSpec]:
    return [
        TopicSpec(name, partitions),
        # Dead letters are kept 30 days: long enough to inspect and replay by hand.
        TopicSpec(f"{name}.dlq", 1, retention_ms=30 * _DAY_MS),
    ]


@dataclass(frozen=True, slots=True)
class TeamAccess:
    """A downstream team's Kafka principal (docs/consumers.md): it reads the topics it subscribes to, joins only
    consumer groups named after the team, and writes only its own dead-letter topic, ``<team>.dlq``. Teams are
    declared here like services, so the same ACL sync, the local SCRAM users and the production KafkaUsers
    serve them."""

    team: str
    consumes: tuple[str, ...]
    example: bool = False  # a kit's own team: made on developer brokers only, never a production principal

    @property
    def principal(self) -> str:
        return f"team-{self.team}"

    @property
    def dead_letters(self) -> str:
        return f"{self.team}.dlq"

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.dead_letters,)

    @property
    def reads(self) -> tuple[str, ...]:
        return self.consumes

    @property
    def group_prefix(self) -> str:
        return self.team


# The team of examples/downstream-consumer (its sales ledger reads orders only); a team of yours goes here too.
TEAM_ACCESS: tuple[TeamAccess, ...] = (TeamAccess("downstream-sales-ledger", consumes=(ORDERS,), example=True),)

TOPICS: tuple[TopicSpec, ...] = tuple(
    spec
    for name, partitions in (
        (IDENTITY_ACCOUNTS, 3),
        (REGIONS_SUBSCRIPTIONS, 3),
        (REGIONS_FX_RATES, 1),
        (ORDERS, 6),
        (BUYER_MESSAGES, 3),
        (BILLING_INVOICES, 3),
        (LISTINGS_OFFERS, 6),
    )
    for spec in _with_dlq(name, partitions)
) + tuple(TopicSpec(team.dead_letters, 1, retention_ms=30 * _DAY_MS) for team in TEAM_ACCESS)


@dataclass(frozen=True, slots=True)
class TopicPolicy:
    """How every topic is replicated: one copy on a developer's single broker, three in production with two in
    sync for a write to count (acks=all), so one broker can be lost without losing an acknowledged event."""

    replication_factor: int = 1
    min_insync_replicas: int = 1

    @classmethod
    def from_env(cls) -> TopicPolicy:
        """KAFKA_REPLICATION_FACTOR and KAFKA_MIN_INSYNC_REPLICAS, else the single-broker defaults."""
        return cls(
            int(os.environ.get("KAFKA_REPLICATION_FACTOR", "1")), int(os.environ.get("KAFKA_MIN_INSYNC_REPLICAS", "1"))
        )

    def configs(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync_replicas)}


PRODUCTION_POLICY = TopicPolicy(replication_factor=3, min_insync_replicas=2)


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


@dataclass(frozen=True, slots=True)
class ServiceAccess:
    """What one service's Kafka principal may do: the single source for broker ACLs, Strimzi KafkaUsers
    and the tests of the trust boundary. A consumer writes the dead-letter topics of what it consumes; every
    service reads ``identity.accounts.v1`` to keep its set of revoked sessions."""

    service: str
    produces: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()

    @property
    def principal(self) -> str:
        return f"svc-{self.service.replace('_', '-')}"

    @property
    def writes(self) -> tuple[str, ...]:
        return self.produces + tuple(dlq(t) for t in self.consumes)

    @property
    def reads(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.consumes, IDENTITY_ACCOUNTS)))

    @property
    def group_prefix(self) -> str:
        """Consumer groups this principal may join (prefixed ACL): ``<service>`` and ``<service>-...``."""
        return self.service


SERVICE_ACCESS: tuple[ServiceAccess, ...] = (
    ServiceAccess("identity", produces=(IDENTITY_ACCOUNTS,)),
    ServiceAccess("regions", produces=(REGIONS_SUBSCRIPTIONS, REGIONS_FX_RATES), consumes=(IDENTITY_ACCOUNTS,)),
    ServiceAccess("orders", produces=(ORDERS,), consumes=(REGIONS_SUBSCRIPTIONS,)),
    ServiceAccess("messages", produces=(BUYER_MESSAGES,), consumes=(REGIONS_SUBSCRIPTIONS,)),
    ServiceAccess(
        "seller_view",
        consumes=(
            IDENTITY_ACCOUNTS,
            REGIONS_SUBSCRIPTIONS,
            REGIONS_FX_RATES,
            ORDERS,
            BUYER_MESSAGES,
            BILLING_INVOICES,
            LISTINGS_OFFERS,
        ),
    ),
    ServiceAccess(
        "billing", produces=(BILLING_INVOICES,), consumes=(IDENTITY_ACCOUNTS, REGIONS_SUBSCRIPTIONS, REGIONS_FX_RATES)
    ),
    ServiceAccess(
        "listings", produces=(LISTINGS_OFFERS,), consumes=(IDENTITY_ACCOUNTS, REGIONS_SUBSCRIPTIONS, REGIONS_FX_RATES)
    ),
    ServiceAccess("web"),
)
# Every principal the broker knows besides the admin: the services', then the downstream teams'.
ALL_ACCESS: tuple[ServiceAccess | TeamAccess, ...] = (*SERVICE_ACCESS, *TEAM_ACCESS)
# The principals production declares (Strimzi KafkaUsers): no example team.
PRODUCTION_ACCESS: tuple[ServiceAccess | TeamAccess, ...] = tuple(
    a for a in ALL_ACCESS if not (isinstance(a, TeamAccess) and a.example)
)


# Partitions for a production-sized platform (1M sellers, 50M orders a day, peaks of 10x), derived in
# docs/capacity.md from the measured per-partition rates; local machines and tests keep TOPICS' small counts.
# A topic's partition count can grow but never shrink without breaking per-key order: these include headroom.
PRODUCTION_PARTITIONS: dict[str, int] = {
    IDENTITY_ACCOUNTS: 6,
    REGIONS_SUBSCRIPTIONS: 12,
    REGIONS_FX_RATES: 1,
    ORDERS: 48,
    BUYER_MESSAGES: 12,
    BILLING_INVOICES: 6,
    LISTINGS_OFFERS: 48,
}


def topic_specs(profile: str = "local") -> tuple[TopicSpec, ...]:
    """The topics of a profile: ``local`` (TOPICS) or ``production`` (PRODUCTION_PARTITIONS, same configs; no
    example team's dead-letter topic)."""
    if profile == "local":
        return TOPICS
    if profile != "production":
        raise ValueError(f"unknown topic profile {profile!r} (local or production)")
    examples = {t.dead_letters for t in TEAM_ACCESS if t.example}
    return tuple(
        TopicSpec(s.name, PRODUCTION_PARTITIONS.get(s.name, s.partitions), s.retention_ms, s.cleanup_policy, s.extra)
        for s in TOPICS
        if s.name not in examples
    )


# What production's manifests declare (Strimzi KafkaTopics) and size the consumers' autoscaling by.
PRODUCTION_TOPICS: tuple[TopicSpec, ...] = topic_specs("production")


def access_of(service: str) -> ServiceAccess:
    for access in SERVICE_ACCESS:
        if access.service == service:
            return access
    raise KeyError(service)


async def create_topics(
    bootstrap: str, specs: tuple[TopicSpec, ...] | list[TopicSpec] = TOPICS, policy: TopicPolicy | None = None
) -> list[str]:
    """Create missing topics; returns the names created. Existing topics are left as they are."""
    policy = policy or TopicPolicy.from_env()
    admin = make_admin(bootstrap, client_id="topic-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created: list[str] = []
        for spec in missing:
            try:
                configs = {**spec.configs(), **policy.configs()}
                topic = NewTopic(spec.name, spec.partitions, policy.replication_factor, topic_configs=configs)
                await admin.create_topics([topic])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Create the unified-seller Kafka topics")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--profile", default="local", choices=["local", "production"], help="partition counts")
    args = parser.parse_args()
    specs = topic_specs(args.profile)
    created = asyncio.run(create_topics(args.bootstrap, specs))
    print(f"topics: {len(specs)} declared, {len(created)} created" + (f" ({', '.join(created)})" if created else ""))


if __name__ == "__main__":
    main()
