"""The Kubernetes manifests of every service, made from deploy/services.toml and unified_shared.topics.

Two variants: ``production`` (written to deploy/k8s/production/, applied with ``kubectl apply -k``) and
``local`` (run by ``podman kube play``: host network, the project's own Kafka and PostgreSQL). Topics, their
partitions and replication, and the Kafka principals with their ACLs are read from topics.py, so a topic or
a service added there shows up here without a second list to keep in step.

Run: ``python deploy/k8s/render.py production`` (rewrite the committed files) or
``python deploy/k8s/render.py local --out FILE [--base-port N ...]`` (what ``make deploy-local`` plays).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from servicetable import ROOT, Instance, Service, services

from unified_shared.local_secrets import kafka_client_env
from unified_shared.topics import (
    PRODUCTION_ACCESS,
    PRODUCTION_POLICY,
    PRODUCTION_TOPICS,
    SERVICE_ACCESS,
    ServiceAccess,
    TopicPolicy,
)

Doc = dict[str, Any]
PRODUCTION_DIR = ROOT / "deploy" / "k8s" / "production"
NAMESPACE = "unified-seller"
KAFKA_CLUSTER = "unified-seller-kafka"
PG_CLUSTER = "unified-seller-pg"
PUBLIC_IDENTITY = "https://id.unified-seller.example"
PUBLIC_WEB = "https://app.unified-seller.example"
# How long a service may take to stop on SIGTERM (SHUTDOWN_TIMEOUT_S); Kubernetes waits longer than that.
SHUTDOWN_S = 20
GRACE_S = SHUTDOWN_S + 15
UID = 10001
# Settings a service with an operator credential reads from its Secret.
OPERATOR_SERVICES = {"identity", "regions", "billing"}


def labels(svc: Service, inst: Instance) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": inst.name,
        "app.kubernetes.io/component": svc.slug,
        "app.kubernetes.io/part-of": "unified-seller",
        "app.kubernetes.io/version": svc.version,
    }


def selector(inst: Instance) -> dict[str, str]:
    return {"app.kubernetes.io/name": inst.name}


def probes(port: str | int) -> dict[str, Any]:
    """Readiness gates traffic (database, relay, consumer); liveness restarts a stuck process; the start-up
    probe gives migrations time before liveness counts."""
    return {
        "startupProbe": {"httpGet": {"path": "/health/live", "port": port}, "periodSeconds": 2, "failureThreshold": 60},
        "readinessProbe": {
            "httpGet": {"path": "/health/ready", "port": port},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health/live", "port": port},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 6,
        },
    }


def resources(svc: Service) -> dict[str, Any]:
    cpu_m = int(svc.cpu.removesuffix("m")) if svc.cpu.endswith("m") else int(float(svc.cpu) * 1000)
    mem = int(svc.memory.removesuffix("Mi"))
    return {
        "requests": {"cpu": svc.cpu, "memory": svc.memory},
        "limits": {"cpu": f"{cpu_m * 2}m", "memory": f"{mem * 2}Mi"},
    }


def container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def deployment(
    svc: Service,
    inst: Instance,
    *,
    image: str,
    replicas: int,
    env: list[dict[str, Any]],
    secret: str,
    host_network: bool,
    volumes: list[tuple[dict[str, Any], dict[str, Any]]] = (),  # type: ignore[assignment]
) -> Doc:
    container: dict[str, Any] = {
        "name": svc.slug,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        # On the host network a port mapping means nothing (podman refuses one): the probes name the number.
        **({} if host_network else {"ports": [{"name": "http", "containerPort": inst.port}]}),
        "envFrom": [{"configMapRef": {"name": f"{inst.name}-config"}}, {"secretRef": {"name": secret}}],
        **({"env": env} if env else {}),
        **probes(inst.port if host_network else "http"),
        "resources": resources(svc),
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *[m for _, m in volumes]],
    }
    pod: dict[str, Any] = {
        "terminationGracePeriodSeconds": GRACE_S,
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID},
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}, *[v for v, _ in volumes]],
    }
    if host_network:
        pod["hostNetwork"] = True
    else:
        pod["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
        pod["automountServiceAccountToken"] = False
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector(inst)},
            }
        ]
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": selector(inst)},
        "template": {"metadata": {"labels": labels(svc, inst)}, "spec": pod},
    }
    if not host_network:
        spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": inst.name, "labels": labels(svc, inst)},
        "spec": spec,
    }


def config_map(inst: Instance, data: dict[str, str]) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{inst.name}-config"},
        "data": dict(sorted(data.items())),
    }


def common_config(svc: Service, inst: Instance) -> dict[str, str]:
    return {
        "HTTP_HOST": "0.0.0.0",
        "HTTP_PORT": str(inst.port),
        "LOG_LEVEL": "INFO",
        "SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_S),
        **inst.env,
        **svc.env,
    }


def links(url: Callable[[Instance], str]) -> dict[str, str]:
    """``<INSTANCE>_URL`` of every service instance, for a service that calls the others (the web app)."""
    return {
        f"{inst.name.upper().replace('-', '_')}_URL": url(inst) for other in services() for inst in other.instances()
    }


# --- production ---------------------------------------------------------------------------------------------
def consumed_partitions(access: ServiceAccess) -> int:
    """The most partitions of a topic the service consumes in production: more instances would idle."""
    sizes = [t.partitions for t in PRODUCTION_TOPICS if t.name in access.consumes]
    return max(sizes, default=0)


def production_service(svc: Service) -> list[Doc]:
    access = next(a for a in SERVICE_ACCESS if a.service == svc.access)
    docs: list[Doc] = []
    for inst in svc.instances():
        config = common_config(svc, inst)
        config |= {
            "KAFKA_BOOTSTRAP_SERVERS": f"{KAFKA_CLUSTER}-kafka-bootstrap:9093",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": access.principal,
            "KAFKA_SSL_CAFILE": "/etc/kafka-ca/ca.crt",
            "IDENTITY_ISSUER": PUBLIC_IDENTITY,
            "IDENTITY_JWKS_URL": "http://identity:8001/.well-known/jwks.json",
        }
        if svc.links:
            config |= links(lambda other: f"http://{other.name}:{other.port}")
            config["WEB_PUBLIC_URL"] = PUBLIC_WEB
        if svc.name == "identity":
            config |= {"PUBLIC_URL": PUBLIC_IDENTITY, "SMTP_HOST": "smtp.unified-seller.example", "SMTP_PORT": "587"}
            config |= {"SMTP_STARTTLS": "true"}
        env: list[dict[str, Any]] = [
            {
                "name": "KAFKA_SASL_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": access.principal, "key": "password"}},
            }
        ]
        if inst.database:
            env += [
                {"name": "DB_USER", "valueFrom": {"secretKeyRef": {"name": f"{svc.slug}-db", "key": "username"}}},
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"{svc.slug}-db", "key": "password"}}},
                {
                    "name": "DATABASE_URL",
                    "value": f"postgresql://$(DB_USER):$(DB_PASSWORD)@{PG_CLUSTER}-rw:5432/{inst.database}?sslmode=require",
                },
            ]
        ca = (
            {"name": "kafka-ca", "secret": {"secretName": f"{KAFKA_CLUSTER}-cluster-ca-cert"}},
            {"name": "kafka-ca", "mountPath": "/etc/kafka-ca", "readOnly": True},
        )
        image = svc.image()
        docs.append(config_map(inst, config))
        docs.append(
            deployment(
                svc,
                inst,
                image=image,
                replicas=svc.replicas,
                env=env,
                secret=f"{svc.slug}-secrets",
                host_network=False,
                volumes=[ca],
            )
        )
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": inst.name, "labels": labels(svc, inst)},
                "spec": {
                    "selector": selector(inst),
                    "ports": [{"name": "http", "port": inst.port, "targetPort": "http"}],
                },
            }
        )
        docs.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": inst.name},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(inst)}},
            }
        )
        # A consumer beyond its topics' partitions would sit idle: the autoscaler stops there.
        ceiling = svc.max_replicas
        if svc.consumer:
            ceiling = max(svc.replicas, min(ceiling, consumed_partitions(access)))
        docs.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": inst.name},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": inst.name},
                    "minReplicas": svc.replicas,
                    "maxReplicas": ceiling,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                        }
                    ],
                },
            }
        )
    return docs


def kafka_topics(policy: TopicPolicy = PRODUCTION_POLICY) -> list[Doc]:
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1beta2",
            "kind": "KafkaTopic",
            "metadata": {"name": spec.name, "labels": {"strimzi.io/cluster": KAFKA_CLUSTER}},
            "spec": {
                "topicName": spec.name,
                "partitions": spec.partitions,
                "replicas": policy.replication_factor,
                "config": {**spec.configs(), **policy.configs()},
            },
        }
        for spec in PRODUCTION_TOPICS
    ]


def _acl(kind: str, name: str, operations: list[str], pattern: str = "literal") -> dict[str, Any]:
    return {"resource": {"type": kind, "name": name, "patternType": pattern}, "operations": operations, "host": "*"}


def kafka_users() -> list[Doc]:
    """One SCRAM principal per service and per downstream team, allowed exactly its row of PRODUCTION_ACCESS."""
    docs = []
    for access in PRODUCTION_ACCESS:
        acls = [_acl("topic", t, ["Write", "Describe"]) for t in access.writes]
        acls += [_acl("topic", t, ["Read", "Describe"]) for t in access.reads]
        acls.append(_acl("group", access.group_prefix, ["Read"], "prefix"))
        docs.append(
            {
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaUser",
                "metadata": {"name": access.principal, "labels": {"strimzi.io/cluster": KAFKA_CLUSTER}},
                "spec": {
                    "authentication": {"type": "scram-sha-512"},
                    "authorization": {"type": "simple", "acls": acls},
                },
            }
        )
    return docs


def postgres(all_services: list[Service]) -> list[Doc]:
    """A CloudNativePG cluster, one login role per service (password from its ``<service>-db`` Secret) and
    one Database per service instance, owned by that role: no service can reach another's tables."""
    with_db = [s for s in all_services if s.database]
    cluster: Doc = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": PG_CLUSTER},
        "spec": {
            "instances": 3,
            "imageName": "ghcr.io/cloudnative-pg/postgresql:15.10",
            "primaryUpdateStrategy": "unsupervised",
            "storage": {"size": "20Gi"},
            "postgresql": {"parameters": {"max_connections": "400"}},
            "managed": {
                "roles": [
                    {
                        "name": s.name,
                        "ensure": "present",
                        "login": True,
                        "passwordSecret": {"name": f"{s.slug}-db"},
                    }
                    for s in with_db
                ]
            },
        },
    }
    databases = [
        {
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Database",
            "metadata": {"name": inst.database.replace("_", "-")},
            "spec": {"name": inst.database, "owner": s.name, "cluster": {"name": PG_CLUSTER}},
        }
        for s in with_db
        for inst in s.instances()
    ]
    return [cluster, *databases]


def kustomization(all_services: list[Service], files: list[str]) -> Doc:
    """Kustomize ties the files together: the namespace, where images come from (``images:`` rewrites the
    local registry to the team's own) and the Secrets, generated from files that are never committed."""
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": files,
        "images": [{"name": s.image().rsplit(":", 1)[0], "newTag": s.version} for s in all_services],
        "generatorOptions": {"disableNameSuffixHash": True},
        "secretGenerator": [
            *[{"name": f"{s.slug}-secrets", "envs": [f"secrets/{s.slug}.env"]} for s in all_services],
            *[
                {"name": f"{s.slug}-db", "type": "kubernetes.io/basic-auth", "envs": [f"secrets/{s.slug}-db.env"]}
                for s in all_services
                if s.database
            ],
        ],
    }


def render_production() -> dict[str, list[Doc]]:
    """File name -> documents of the production variant."""
    all_services = services()
    files: dict[str, list[Doc]] = {
        "namespace.yaml": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}],
        "kafka-topics.yaml": kafka_topics(),
        "kafka-users.yaml": kafka_users(),
        "postgres.yaml": postgres(all_services),
    }
    for svc in all_services:
        files[f"{svc.slug}.yaml"] = production_service(svc)
    files["kustomization.yaml"] = [kustomization(all_services, sorted(files))]
    return files


# --- local --------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class LocalOptions:
    """Where the local containers find Kafka and PostgreSQL, and what keeps them apart from other runs."""

    base_port: int = 8000  # a service's port is base_port + (its default port - 8000)
    kafka: str = "127.0.0.1:9092"
    pg_hostport: str = "127.0.0.1:55432"
    database_prefix: str = ""  # e2e runs use throwaway databases
    name_suffix: str = ""  # pods and consumer groups of a test run
    smtp_port: int = 2525
    mail_dir: str = "/var/tmp/unified-seller/mail"  # where the local SMTP sink writes the .eml files
    operator_token: str = "set-by-make-deploy-local"
    kafka_security: dict[str, str] = field(default_factory=dict)  # KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, ...
    # identity's signing keys are encrypted at rest with it: the state folder's, else a fresh one per run
    identity_key_encryption_key: str = field(default_factory=lambda: _local_identity_key())  # noqa: PLW0108 (defined below)

    @classmethod
    def from_env(cls) -> LocalOptions:
        security = {
            k: v
            for k, v in os.environ.items()
            if k in {"KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SSL_CAFILE", "KAFKA_SASL_PASSWORD"}
        }
        return cls(
            base_port=int(os.environ.get("DEPLOY_BASE_PORT", "8000")),
            kafka=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            pg_hostport=f"127.0.0.1:{os.environ.get('PG_PORT', '55432')}",
            mail_dir=os.path.join(os.environ.get("US_STATE_DIR", "/var/tmp/unified-seller"), "mail"),
            smtp_port=int(os.environ.get("SMTP_PORT", "2525")),
            kafka_security=security,
            operator_token=os.environ.get("OPERATOR_TOKEN", "set-by-make-deploy-local"),
        )


def render_local(opts: LocalOptions) -> list[Doc]:
    """Every service for ``podman kube play``: host network (the containers reach the host's Kafka and
    PostgreSQL on 127.0.0.1 and serve on the host's ports), one replica each, the production images."""
    docs: list[Doc] = []
    for svc in [s for s in services() if s.local]:
        access = next(a for a in SERVICE_ACCESS if a.service == svc.access)
        for base in svc.instances():
            inst = Instance(base.name + opts.name_suffix, base.port - 8000 + opts.base_port, base.database, base.env)
            identity_url = f"http://127.0.0.1:{opts.base_port + 1}"
            config = common_config(svc, base) | {
                "HTTP_HOST": "127.0.0.1",
                "HTTP_PORT": str(inst.port),
                "KAFKA_BOOTSTRAP_SERVERS": opts.kafka,
                "IDENTITY_ISSUER": identity_url,
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(opts.smtp_port),
                # The demo story closes its periods itself through the API; the scheduler would race it.
                "SCHEDULER_ENABLED": "false",
                **{k: v for k, v in opts.kafka_security.items() if k != "KAFKA_SASL_PASSWORD"},
            }
            if svc.name == "identity":
                config["PUBLIC_URL"] = identity_url
            if svc.links:
                config |= links(lambda other: f"http://127.0.0.1:{other.port - 8000 + opts.base_port}")
                config["WEB_PUBLIC_URL"] = f"http://127.0.0.1:{inst.port}"
            if opts.kafka_security:
                config["KAFKA_SASL_USERNAME"] = access.principal
            if opts.name_suffix and svc.consumer:
                config["CONSUMER_GROUP"] = f"{base.database}{opts.name_suffix}"
            secret: dict[str, str] = {}
            if inst.database:
                secret["DATABASE_URL"] = (
                    f"postgresql://postgres@{opts.pg_hostport}/{opts.database_prefix}{inst.database}"
                )
            if svc.name in OPERATOR_SERVICES:
                secret["OPERATOR_TOKEN"] = opts.operator_token
            if svc.name == "identity":
                secret["IDENTITY_KEY_ENCRYPTION_KEY"] = opts.identity_key_encryption_key
            if opts.kafka_security.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT") != "PLAINTEXT":
                # Each container logs in as its service's own principal, with that principal's password.
                secret["KAFKA_SASL_PASSWORD"] = kafka_client_env(access.principal)["KAFKA_SASL_PASSWORD"]
            ca_file = opts.kafka_security.get("KAFKA_SSL_CAFILE")
            if ca_file:
                config["KAFKA_SSL_CAFILE"] = LOCAL_CA_PATH  # the host's CA certificate, mounted read-only
            docs.append(config_map(inst, config))
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": f"{inst.name}-secrets"},
                    "type": "Opaque",
                    "stringData": dict(sorted(secret.items())),
                }
            )
            docs.append(
                deployment(
                    svc,
                    inst,
                    image=svc.image(),
                    replicas=1,
                    env=[],
                    secret=f"{inst.name}-secrets",
                    host_network=True,
                )
            )
            if ca_file:
                _mount_file(docs[-1], "kafka-ca", ca_file, LOCAL_CA_PATH)
    docs.append(smtp_sink(opts))
    return docs


LOCAL_CA_PATH = "/etc/kafka-ca/ca.crt"


def _local_identity_key() -> str:
    from cryptography.fernet import Fernet

    from unified_shared.local_secrets import MissingLocalSecrets, local_secrets

    try:
        key = local_secrets().get("IDENTITY_KEY_ENCRYPTION_KEY")
    except MissingLocalSecrets:
        key = None
    return key or Fernet.generate_key().decode()


def _mount_file(doc: Doc, name: str, host_file: str, path: str) -> None:
    """Mount one host file read-only (only the CA certificate: never the folder, which holds the CA's key)."""
    pod = doc["spec"]["template"]["spec"]
    pod.setdefault("volumes", []).append({"name": name, "hostPath": {"path": host_file, "type": "File"}})
    container = pod["containers"][0]
    container.setdefault("volumeMounts", []).append({"name": name, "mountPath": path, "readOnly": True})


def smtp_sink(opts: LocalOptions) -> Doc:
    """The local SMTP sink (identity's image, another command): invitation mails land in ``mail_dir``."""
    identity = next(s for s in services() if s.name == "identity")
    inst = Instance("smtp-sink" + opts.name_suffix, opts.smtp_port, "")
    doc = deployment(identity, inst, image=identity.image(), replicas=1, env=[], secret="", host_network=True)
    pod = doc["spec"]["template"]["spec"]
    container = pod["containers"][0]
    container["command"] = ["python", "-m", "unified_identity", "smtp-sink", "--dir", "/mail"]
    container["args"] = ["--host", "127.0.0.1", "--port", str(opts.smtp_port)]
    del container["envFrom"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        container[probe] = {"tcpSocket": {"port": opts.smtp_port}, "periodSeconds": 10}
    container["volumeMounts"].append({"name": "mail", "mountPath": "/mail"})
    pod["volumes"].append({"name": "mail", "hostPath": {"path": opts.mail_dir, "type": "DirectoryOrCreate"}})
    return doc


def dump(docs: list[Doc]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in docs)


HEADER = "# Generated by deploy/k8s/render.py from deploy/services.toml and unified_shared/topics.py: do not edit.\n"


def write_production(directory: Path = PRODUCTION_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, docs in render_production().items():
        path = directory / name
        path.write_text(HEADER + dump(docs))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description="Render the Kubernetes manifests")
    parser.add_argument("variant", choices=["production", "local"])
    parser.add_argument("--out", type=Path, help="local: the file to write (default: standard output)")
    parser.add_argument("--base-port", type=int)
    parser.add_argument("--database-prefix", default="")
    parser.add_argument("--name-suffix", default="")
    parser.add_argument("--smtp-port", type=int)
    args = parser.parse_args()
    if args.variant == "production":
        for path in write_production():
            print(path.relative_to(ROOT))
        return
    opts = LocalOptions.from_env()
    opts.database_prefix, opts.name_suffix = args.database_prefix, args.name_suffix
    if args.base_port is not None:
        opts.base_port = args.base_port
    if args.smtp_port is not None:
        opts.smtp_port = args.smtp_port
    text = HEADER + dump(render_local(opts))
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
