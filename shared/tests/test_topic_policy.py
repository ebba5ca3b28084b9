"""Topic replication comes from configuration (TopicPolicy), not a constant: what create_topics asks the broker
for, and what the production manifests declare (deploy/k8s, replication 3 with 2 in sync)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from unified_shared.kafka import make_admin
from unified_shared.topics import PRODUCTION_POLICY, TopicPolicy, TopicSpec, create_topics


def test_policy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_REPLICATION_FACTOR", raising=False)
    monkeypatch.delenv("KAFKA_MIN_INSYNC_REPLICAS", raising=False)
    assert TopicPolicy.from_env() == TopicPolicy(1, 1)
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "2")
    assert TopicPolicy.from_env() == PRODUCTION_POLICY
    assert PRODUCTION_POLICY.configs() == {"min.insync.replicas": "2"}


async def test_create_topics_creates_with_the_spec_partitions_and_the_policy_configs(kafka_bootstrap: str) -> None:
    name = f"test.policy.{uuid.uuid4().hex[:8]}"
    created = await create_topics(kafka_bootstrap, [TopicSpec(name, 2)], policy=TopicPolicy(1, 1))
    assert created == [name]
    admin = make_admin(kafka_bootstrap, client_id="topic-policy-test")
    await admin.start()
    try:
        (described,) = await admin.describe_topics([name])
        assert len(described["partitions"]) == 2
        assert {len(p["replicas"]) for p in described["partitions"]} == {1}
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
        assert configs["min.insync.replicas"] == "1"
        assert configs["retention.ms"] == "-1"
        await admin.delete_topics([name])
    finally:
        await admin.close()
