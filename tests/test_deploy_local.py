"""The demo story against the service images under ``podman kube play`` (the local manifests of deploy/k8s).

Same story and same checks as tests/test_e2e.py, but every service is the image `make images` built, run
from the rendered Deployment (non-root, read-only root filesystem, settings from its ConfigMap and Secret) on
the host network against the project's Kafka and PostgreSQL. Ports E2E_BASE_PORT+100.., throwaway databases
and consumer groups of its own. Run by ``make test-deploy`` (CI runs it); needs the images (``make images``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from unified_demo import expected
from unified_demo.driver import Driver, Operations
from unified_demo.endpoints import Endpoints
from unified_demo.scenario import ScenarioConfig, build

from .test_e2e import check_story_outcome

pytestmark = pytest.mark.containers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy" / "k8s"))
sys.path.insert(0, str(ROOT / "deploy"))

import local  # noqa: E402
from render import LocalOptions  # noqa: E402
from servicetable import services  # noqa: E402

OPERATOR_TOKEN = secrets.token_urlsafe(32)  # a service refuses one shorter than 32 characters


async def _databases(admin_dsn: str, names: list[str], *, create: bool) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        for name in names:
            if create:
                await conn.execute(f'CREATE DATABASE "{name}"')
            else:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _pod_logs(docs: list[dict[str, Any]]) -> str:
    out = []
    for doc in docs:
        if doc["kind"] == "Deployment":
            name = doc["metadata"]["name"]
            container = doc["spec"]["template"]["spec"]["containers"][0]["name"]
            done = local.podman("logs", "--tail", "30", f"{name}-pod-0-{container}", check=False)
            out.append(f"--- {name}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return "\n".join(out)


@pytest.fixture
def containers(infra: Any, tmp_path: Path) -> Iterator[tuple[LocalOptions, Endpoints]]:
    missing = [s.image() for s in services() if local.podman("image", "exists", s.image(), check=False).returncode]
    assert not missing, f"images missing: {', '.join(missing)}; run `make images`"
    run = uuid.uuid4().hex[:6]
    base = int(os.environ.get("E2E_BASE_PORT", "18000")) + 100
    pg_hostport = infra.pg_admin_dsn.split("@", 1)[1].split("/", 1)[0]
    opts = LocalOptions(
        base_port=base,
        kafka=infra.kafka,
        pg_hostport=pg_hostport,
        database_prefix=f"c_{run}_",
        name_suffix=f"-{run}",
        smtp_port=base + 25,
        operator_token=OPERATOR_TOKEN,
        mail_dir=str(tmp_path / "mail"),
        kafka_security=LocalOptions.from_env().kafka_security,
    )
    databases = [f"c_{run}_{i.database}" for s in services() if s.local for i in s.instances() if i.database]
    asyncio.run(_databases(infra.pg_admin_dsn, databases, create=True))
    manifest = tmp_path / "local.yaml"
    docs: list[dict[str, Any]] = []
    try:
        docs = local.up(opts, manifest)
        try:
            local.wait_ready([f"http://127.0.0.1:{p}" for p in local.ports(docs)])
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{_pod_logs(docs)}") from None
        u = "http://127.0.0.1:{}".format
        yield (
            opts,
            Endpoints(
                identity=u(base + 1),
                regions=u(base + 2),
                orders={r: u(base + 11 + i) for i, r in enumerate(("NA", "EU", "FE"))},
                messages={r: u(base + 21 + i) for i, r in enumerate(("NA", "EU", "FE"))},
                seller_view=u(base + 30),
                billing=u(base + 40),
                mail_dir=opts.mail_dir,
                operator_token=OPERATOR_TOKEN,
            ),
        )
    finally:
        local.down(manifest)
        asyncio.run(_databases(infra.pg_admin_dsn, databases, create=False))


def test_the_demo_story_against_the_service_containers(containers: tuple[LocalOptions, Endpoints]) -> None:
    opts, ep = containers
    # What the images are: non-root, read-only, entrypoint serve, labelled with their own version.
    for svc in services():
        inspect = local.podman(
            "image",
            "inspect",
            "--format",
            '{{.Config.User}} {{index .Config.Labels "org.opencontainers.image.version"}} {{json .Config.Entrypoint}}',
            svc.image(),
        ).stdout.split(" ", 2)
        assert inspect[0].startswith("10001") and inspect[1] == svc.version and '"serve"' in inspect[2], inspect
    running = subprocess.run(
        [local.PODMAN, "ps", "--format", "{{.Names}}"], check=True, text=True, capture_output=True
    ).stdout.split()
    assert any(n.startswith(f"identity{opts.name_suffix}-pod") for n in running)

    async def story() -> tuple[Any, Any, Any, Any, Any]:
        scenario = build(ScenarioConfig(seed=11, days=61, orders_per_day=4))
        months = expected.periods(scenario)
        steps: list[str] = []
        async with httpx.AsyncClient(timeout=60.0) as http:
            driver = Driver(ep, scenario, http, steps.append)
            ops = Operations(ep, scenario, http, steps.append)
            await driver.wait_ready()
            await ops.import_fx_rates()
            session = await driver.register_and_sign_in("containers")
            await driver.open_marketplaces(session)
            await driver.invite_member(session, "containers")
            await driver.ingest_orders(session)
            await driver.ingest_messages(session)
            await ops.wait_for_billing_inputs(session, months)
            await ops.close_periods(session, months)
            invoice_count = sum(len(c) for c in expected.invoice_currencies(scenario).values())
            await ops.wait_for_view(session, len(scenario.final_orders()), invoice_count)
            base = f"{ep.seller_view}/v1/accounts/{session.account_id}"
            owner, member = session.owner.auth, session.member.auth  # type: ignore[union-attr]
            overview = (await http.get(f"{base}/overview", params={"currency": "USD"}, headers=owner)).json()
            member_overview = (await http.get(f"{base}/overview", params={"currency": "EUR"}, headers=member)).json()
            member_orders = (await http.get(f"{base}/orders", params={"max_results": 100}, headers=member)).json()
            invoices = (await http.get(f"{ep.billing}/v1/accounts/{session.account_id}/invoices", headers=owner)).json()
        return scenario, overview, member_overview, member_orders, invoices

    check_story_outcome(*asyncio.run(story()))
