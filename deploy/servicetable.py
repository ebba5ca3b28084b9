"""The per-service table (deploy/services.toml) as Python: what images and manifests are made from.

One module so that `make images`, the manifests and their tests agree on names, versions and ports.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "deploy" / "services.toml"
REGISTRY = "localhost/unified-seller"


@dataclass(frozen=True, slots=True)
class Instance:
    """One Deployment: a service, or one region of a regional service."""

    name: str  # Kubernetes name: identity, orders-na, seller-view
    port: int
    database: str  # "" when the service has none
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Service:
    name: str  # as in SERVICE_ACCESS: seller_view
    package: Path
    module: str
    distribution: str
    version: str
    port: int
    database: str
    regions: tuple[str, ...]
    access: str
    consumer: bool
    replicas: int
    max_replicas: int
    cpu: str
    memory: str
    env: dict[str, str]
    links: bool = False  # gets the URL of every other service (<INSTANCE>_URL)
    local: bool = True  # part of the local variant (podman kube play)

    @property
    def slug(self) -> str:
        return self.name.replace("_", "-")

    def image(self, registry: str = REGISTRY) -> str:
        return f"{registry}/{self.slug}:{self.version}"

    def instances(self) -> list[Instance]:
        if not self.regions:
            return [Instance(self.slug, self.port, self.database, {})]
        return [
            Instance(f"{self.slug}-{r.lower()}", self.port + i, self.database.format(region=r.lower()), {"REGION": r})
            for i, r in enumerate(self.regions)
        ]


def services(names: list[str] | None = None) -> list[Service]:
    """Every service of the table (or the named ones), with the version of its own pyproject.toml."""
    with TABLE.open("rb") as f:
        table = tomllib.load(f)
    result = []
    for name, row in table.items():
        if names and name not in names:
            continue
        package = ROOT / row["package"]
        if not (package / "pyproject.toml").exists():
            continue  # a service announced in the table whose code has not landed yet
        with (package / "pyproject.toml").open("rb") as f:
            project = tomllib.load(f)["project"]
        result.append(
            Service(
                name=name,
                package=package,
                module=row["module"],
                distribution=project["name"],
                version=project["version"],
                port=int(row["port"]),
                database=row.get("database", ""),
                regions=tuple(row.get("regions", ())),
                access=row.get("access", name),
                consumer=bool(row.get("consumer", False)),
                replicas=int(row.get("replicas", 2)),
                max_replicas=int(row.get("max_replicas", row.get("replicas", 2))),
                cpu=row.get("cpu", "250m"),
                memory=row.get("memory", "256Mi"),
                env={k: str(v) for k, v in row.get("env", {}).items()},
                links=bool(row.get("links", False)),
                local=bool(row.get("local", True)),
            )
        )
    return result
