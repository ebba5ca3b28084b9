"""Scale out by adding instances: three seller_view processes in one consumer group share the partitions;
one is killed with SIGKILL while events flow; nothing is lost or doubled, the lag returns to 0 and the
surviving instances answer the API the same."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import httpx

from unified_seller_view.overview_rules import minor
from unified_shared.testing import TestIssuer
from unified_shared.testing_services import run_module

from .scenario import Scenario, fx_events
from .support import DE, FR, JP, US, publisher, utc, wait_caught_up

INSTANCES = 3
ACCOUNTS = 12
ORDERS_PER_ACCOUNT = 24


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_ready(client: httpx.AsyncClient, base: str, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise AssertionError(f"instance exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(f"{base}/health/ready")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{base} never became ready")


@contextlib.asynccontextmanager
async def instances(env: dict[str, str], n: int) -> AsyncIterator[list[tuple[str, asyncio.subprocess.Process]]]:
    started: list[tuple[str, asyncio.subprocess.Process]] = []
    try:
        for _ in range(n):
            port = _free_port()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "unified_seller_view",
                "serve",
                env={**env, "HTTP_PORT": str(port)},
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            started.append((f"http://127.0.0.1:{port}", proc))
        yield started
    finally:
        for _, proc in started:
            if proc.returncode is None:
                proc.terminate()
        for _, proc in started:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), timeout=20)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _scenarios() -> list[Scenario]:
    out = []
    markets = [US, DE, FR, JP]
    for a in range(ACCOUNTS):
        s = Scenario(uuid.uuid4())
        s.register()
        for i in range(ORDERS_PER_ACCOUNT):
            o = s.place(markets[(a + i) % 4], utc(2026, 9, 10 + i % 5, 9 + i % 12), f"{10 + i}.{a:02d}", 1 + i % 3)
            if i % 4 == 0:
                s.add(*s.change(o, "Shipped", utc(2026, 9, 16, 8)))
            if i % 6 == 0:
                s.add(*s.refund(o, "1.25", utc(2026, 9, 17, 8)))
        out.append(s)
    return out


async def test_three_instances_share_the_partitions_and_survive_a_sigkill(make_db, kafka_bootstrap) -> None:
    dsn = await make_db()
    issuer = TestIssuer()
    scenarios = _scenarios()
    async with issuer.serve() as jwks_url, httpx.AsyncClient(timeout=30.0) as client:
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CONSUMER_GROUP": f"sv-scale-{uuid.uuid4().hex[:8]}",
            "VIEW_ORIGIN": "latest",
            "IDENTITY_ISSUER": issuer.issuer,
            "IDENTITY_JWKS_URL": jwks_url,
            "LOG_LEVEL": "WARNING",
        }
        code, _, _ = await run_module("unified_seller_view", "migrate", env=env)
        assert code == 0
        conn = await asyncpg.connect(dsn)
        try:
            consumer = str(await conn.fetchval("SELECT consumer_name FROM view_generations WHERE generation = 1"))
        finally:
            await conn.close()
        async with instances(env, INSTANCES) as running, publisher(make_db, kafka_bootstrap) as pub:
            for base, proc in running:
                await _wait_ready(client, base, proc)
            await pub.publish(*fx_events())
            half = len(scenarios) // 2
            for s in scenarios[:half]:
                await pub.publish(*s.events)
            victim = running[0][1]
            victim.send_signal(signal.SIGKILL)  # mid-ingest, batches possibly in flight
            await victim.wait()
            for s in scenarios[half:]:
                await pub.publish(*s.events)
            # lag back to 0: the stored offsets reach every partition's end (the survivors took the victim's)
            await wait_caught_up(dsn, consumer, kafka_bootstrap, timeout_s=120)

            conn = await asyncpg.connect(dsn)
            try:
                for s in scenarios:
                    rows = await conn.fetch(
                        "SELECT amazon_order_id, status FROM view_1.orders WHERE account_id = $1", s.account_id
                    )
                    assert {r["amazon_order_id"]: r["status"] for r in rows} == {
                        oid: o.status for oid, o in s.orders.items()
                    }
                    refunds = await conn.fetch(
                        "SELECT amazon_order_id, amount FROM view_1.order_refunds WHERE account_id = $1", s.account_id
                    )
                    assert sorted((r["amazon_order_id"], r["amount"]) for r in refunds) == sorted(
                        (oid, amount) for oid, o in s.orders.items() for amount in o.refunds
                    )
                # every event of this test claimed exactly once (claims are keyed by event ID: none is doubled);
                # the shared topics may carry other tests' late records, so count ours by their IDs
                ours = [r["event_id"] for r in await pub.pool.fetch("SELECT event_id FROM event_store")]
                assert len(ours) == sum(len(s.events) for s in scenarios) + len(fx_events())
                claimed = await conn.fetchval(
                    """SELECT count(*) FROM consumer_processed_events
                       WHERE consumer = $1 AND event_id = ANY($2::uuid[]) AND outcome = 'applied'""",
                    consumer,
                    ours,
                )
                assert claimed == len(ours)
            finally:
                await conn.close()

            # any surviving instance answers the same
            s = scenarios[-1]
            token = issuer.mint(account_id=s.account_id)
            answers = []
            for base, proc in running[1:]:
                assert proc.returncode is None
                response = await client.get(
                    f"{base}/v1/accounts/{s.account_id}/overview",
                    params={"currency": "EUR"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.status_code == 200, response.text
                answers.append(json.dumps(response.json(), sort_keys=True))
            assert answers[0] == answers[1]
            total = json.loads(answers[0])["total"]
            assert total["orders"] == ORDERS_PER_ACCOUNT
            refunded: dict[str, Decimal] = {}
            for o in s.orders.values():
                for r in o.refunds:
                    refunded[o.currency] = refunded.get(o.currency, Decimal(0)) + r
            assert {c: Decimal(v) for c, v in total["refunds"]["local"].items()} == {
                c: v.quantize(minor(c)) for c, v in refunded.items()
            }
