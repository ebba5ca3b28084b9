"""The Kubernetes manifests (deploy/k8s) as a platform team would review them, without a cluster.

The production files are the committed output of deploy/k8s/render.py: they must equal a fresh rendering (a
topic or service changed in code shows up here), parse, give every container probes, resources, a non-root
user, a read-only root filesystem and a pinned tag, and carry a Strimzi resource for every topic and Kafka
principal of unified_shared.topics and a CloudNativePG Database for every service database.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from unified_shared.topics import (
    PRODUCTION_ACCESS,
    PRODUCTION_PARTITIONS,
    PRODUCTION_TOPICS,
    SERVICE_ACCESS,
    TEAM_ACCESS,
    TOPICS,
)

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = ROOT / "deploy" / "k8s" / "production"


def _load(name: str, path: Path) -> ModuleType:
    sys.path.insert(0, str(ROOT / "deploy"))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


render = _load("render", ROOT / "deploy" / "k8s" / "render.py")
servicetable = sys.modules["servicetable"]


def committed() -> dict[str, list[dict[str, Any]]]:
    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d] for p in sorted(PRODUCTION.glob("*.yaml"))}


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def all_docs() -> list[dict[str, Any]]:
    return [d for docs in committed().values() for d in docs]


def check_container(container: dict[str, Any], pod: dict[str, Any], configs: dict[str, dict[str, str]]) -> None:
    name = container["name"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", name
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), (name, kind)
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0, name
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False, name
    assert pod["securityContext"]["runAsNonRoot"] is True
    image, _, tag = container["image"].rpartition(":")
    assert tag and tag != "latest" and "/" not in tag, container["image"]
    service = next(s for s in servicetable.services() if s.slug == image.rsplit("/", 1)[1])
    assert tag == service.version, (name, tag, service.version)
    refs = container["envFrom"]
    config = next(r["configMapRef"]["name"] for r in refs if "configMapRef" in r)
    assert any("secretRef" in r for r in refs), name
    # Kubernetes waits longer than the service's own bounded shutdown before it kills.
    assert pod["terminationGracePeriodSeconds"] > int(configs[config]["SHUTDOWN_TIMEOUT_S"]), name


def test_committed_production_manifests_equal_a_fresh_rendering() -> None:
    fresh = {name: docs for name, docs in render.render_production().items()}
    assert committed() == fresh, "deploy/k8s/production is stale: run `make manifests`"


def test_every_production_container_is_probed_limited_non_root_and_pinned() -> None:
    docs = all_docs()
    configs = {d["metadata"]["name"]: d["data"] for d in of_kind(docs, "ConfigMap")}
    deployments = of_kind(docs, "Deployment")
    expected = {i.name for s in servicetable.services() for i in s.instances()}
    assert {d["metadata"]["name"] for d in deployments} == expected
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert "hostNetwork" not in pod
        for container in pod["containers"]:
            check_container(container, pod, configs)


def test_production_runs_several_replicas_with_budgets_and_autoscalers() -> None:
    docs = all_docs()
    names = {d["metadata"]["name"] for d in of_kind(docs, "Deployment")}
    for deployment in of_kind(docs, "Deployment"):
        assert deployment["spec"]["replicas"] >= 2, deployment["metadata"]["name"]
    assert {d["metadata"]["name"] for d in of_kind(docs, "Service")} == names
    budgets = of_kind(docs, "PodDisruptionBudget")
    assert {d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for d in budgets} == names
    hpas = {d["spec"]["scaleTargetRef"]["name"]: d["spec"] for d in of_kind(docs, "HorizontalPodAutoscaler")}
    assert set(hpas) == names
    for spec in hpas.values():
        assert 2 <= spec["minReplicas"] <= spec["maxReplicas"]


def test_every_topic_of_topics_py_has_its_strimzi_topic_replicated_three_times() -> None:
    """...with the production partition counts of the capacity plan (PRODUCTION_PARTITIONS), not the local ones."""
    topics = {d["spec"]["topicName"]: d["spec"] for d in of_kind(all_docs(), "KafkaTopic")}
    assert {name: topics[name]["partitions"] for name in PRODUCTION_PARTITIONS} == PRODUCTION_PARTITIONS
    assert set(topics) == {t.name for t in PRODUCTION_TOPICS}
    assert {t.name for t in TOPICS} - set(topics) == {t.dead_letters for t in TEAM_ACCESS if t.example}
    for spec in PRODUCTION_TOPICS:
        topic = topics[spec.name]
        assert topic["partitions"] == spec.partitions, spec.name
        assert topic["replicas"] == 3 and topic["config"]["min.insync.replicas"] == "2", spec.name
        assert topic["config"]["retention.ms"] == str(spec.retention_ms)


def test_every_principal_of_topics_py_has_its_kafka_user_with_exactly_its_acls() -> None:
    users = {d["metadata"]["name"]: d["spec"] for d in of_kind(all_docs(), "KafkaUser")}
    assert set(users) == {a.principal for a in PRODUCTION_ACCESS}
    assert not {t.principal for t in TEAM_ACCESS if t.example} & set(users)  # the kit's team is a developer's only
    for access in PRODUCTION_ACCESS:
        spec = users[access.principal]
        assert spec["authentication"]["type"] == "scram-sha-512"
        acls = spec["authorization"]["acls"]
        written = {a["resource"]["name"] for a in acls if "Write" in a["operations"]}
        read = {a["resource"]["name"] for a in acls if a["resource"]["type"] == "topic" and "Read" in a["operations"]}
        groups = [a["resource"] for a in acls if a["resource"]["type"] == "group"]
        assert written == set(access.writes), access.principal
        assert read == set(access.reads), access.principal
        assert groups == [{"type": "group", "name": access.group_prefix, "patternType": "prefix"}]


def test_every_service_database_has_its_cloudnativepg_database_and_role() -> None:
    docs = all_docs()
    (cluster,) = of_kind(docs, "Cluster")
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d["spec"] for d in of_kind(docs, "Database")}
    for service in servicetable.services():
        for instance in service.instances():
            if instance.database:
                assert databases[instance.database]["owner"] == service.name
                assert roles[service.name]["passwordSecret"]["name"] == f"{service.slug}-db"


def test_every_secret_a_production_pod_reads_is_generated_or_made_by_an_operator() -> None:
    docs = all_docs()
    (kustomization,) = committed()["kustomization.yaml"]
    generated = {g["name"] for g in kustomization["secretGenerator"]}
    by_operators = {a.principal for a in SERVICE_ACCESS} | {f"{render.KAFKA_CLUSTER}-cluster-ca-cert"}
    assert set(kustomization["resources"]) == {p.name for p in PRODUCTION.glob("*.yaml")} - {"kustomization.yaml"}
    for deployment in of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        names = {r["secretRef"]["name"] for r in container["envFrom"] if "secretRef" in r}
        names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "valueFrom" in e}
        names |= {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert names <= generated | by_operators, names - generated - by_operators


def test_local_variant_runs_the_same_images_on_the_host_network() -> None:
    docs = render.render_local(render.LocalOptions(base_port=18100, database_prefix="t_", name_suffix="-t"))
    configs = {d["metadata"]["name"]: d["data"] for d in of_kind(docs, "ConfigMap")}
    secrets = {d["metadata"]["name"]: d["stringData"] for d in of_kind(docs, "Secret")}
    deployments = of_kind(docs, "Deployment")
    services = [d for d in deployments if d["metadata"]["name"] != "smtp-sink-t"]
    assert {d["metadata"]["name"] for d in services} == {
        i.name + "-t" for s in servicetable.services() if s.local for i in s.instances()
    }
    for deployment in services:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["hostNetwork"] is True
        check_container(pod["containers"][0], pod, configs)
        name = deployment["metadata"]["name"]
        assert secrets[f"{name}-secrets"]["DATABASE_URL"].rsplit("/", 1)[1].startswith("t_")
        assert int(configs[f"{name}-config"]["HTTP_PORT"]) > 18100


def test_every_service_package_is_in_the_deploy_table() -> None:
    """A service added under services/ without its row in deploy/services.toml would get no image."""
    table = tomllib.loads((ROOT / "deploy" / "services.toml").read_text())
    packages = {str(Path(row["package"])) for row in table.values()}
    found = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "services").glob("*/pyproject.toml")}
    assert found <= packages, found - packages


@pytest.mark.parametrize("service", [s.name for s in servicetable.services()])
def test_each_service_carries_its_own_version(service: str) -> None:
    """pyproject version = the installed package's = its AsyncAPI document's = its changelog's latest entry."""
    import importlib.metadata
    import json

    svc = next(s for s in servicetable.services() if s.name == service)
    assert importlib.metadata.version(svc.distribution) == svc.version
    path = ROOT / "docs" / "asyncapi" / f"{service}.json"
    if path.exists():  # a service that neither produces nor consumes has no AsyncAPI document
        assert json.loads(path.read_text())["info"]["version"] == svc.version
    changelog = (svc.package / "CHANGELOG.md").read_text()
    first = next(line for line in changelog.splitlines() if line.startswith("## "))
    assert first.removeprefix("## ").split()[0] == svc.version
