"""A session ends everywhere (DESIGN section 11): the owner removes a member who holds a valid access token,
and every service, each its own OS process reading ``identity.accounts.v1``, refuses that token soon after,
on reads and on writes (a reply to a buyer). The measured times are printed; the assertion only has a
generous deadline (speed goals live in ``make bench``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from unified_demo.driver import Driver
from unified_demo.scenario import ScenarioConfig, build
from unified_shared import catalog

from .platform_processes import Platform
from .test_e2e import endpoints_for

pytestmark = pytest.mark.e2e

DEADLINE_S = 30.0


@pytest.fixture
def running_platform(infra: Any, tmp_path: Path) -> Any:
    plat = Platform(infra.kafka, infra.pg_admin_dsn, tmp_path)
    plat.plan()
    plat.create_databases()
    try:
        plat.start_all()
        yield plat
    finally:
        plat.stop_all()
        plat.drop_databases()


def probes(plat: Platform, account_id: str) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    """One call per service process that the member's token could make: (method, url, JSON body)."""
    s = plat.services
    de = catalog.resolve("DE").marketplace_id
    calls: dict[str, tuple[str, str, dict[str, Any] | None]] = {
        "identity": ("GET", f"{s['identity'].url}/userinfo", None),
        "identity /members": ("GET", f"{s['identity'].url}/v1/accounts/{account_id}/members", None),
        "regions": ("GET", f"{s['regions'].url}/v1/accounts/{account_id}/participations", None),
        "seller_view": ("GET", f"{s['seller_view'].url}/v1/accounts/{account_id}/overview?currency=EUR", None),
        "billing": ("GET", f"{s['billing'].url}/v1/accounts/{account_id}/invoices", None),
    }
    for region in ("NA", "EU", "FE"):
        calls[f"orders-{region}"] = ("GET", f"{s[f'orders-{region}'].url}/orders/v0/orders?MarketplaceIds={de}", None)
        calls[f"messages-{region}"] = ("GET", f"{s[f'messages-{region}'].url}/messaging/v1/threads", None)
    reply = {"body": "Thanks, it ships today.", "message_id": f"reply-{uuid.uuid4().hex[:8]}"}
    calls["messages-EU reply (a write)"] = (
        "POST",
        f"{s['messages-EU'].url}/messaging/v1/threads/thread-{uuid.uuid4().hex[:8]}/replies",
        reply,
    )
    return calls


async def call(http: httpx.AsyncClient, auth: dict[str, str], probe: tuple[str, str, dict[str, Any] | None]) -> int:
    method, url, body = probe
    answer = await http.request(method, url, headers=auth, json=body)
    return answer.status_code


async def refused_after(
    http: httpx.AsyncClient, auth: dict[str, str], probe: tuple[str, str, dict[str, Any] | None], since: float
) -> float | None:
    """Seconds from ``since`` until the probe answers 401, or None if it never did before the deadline."""
    while time.monotonic() - since < DEADLINE_S:
        try:
            if await call(http, auth, probe) == 401:
                return time.monotonic() - since
        except httpx.TransportError:
            pass  # a keep-alive connection the server closed meanwhile: ask again
        await asyncio.sleep(0.05)
    return None


async def test_a_removed_members_token_is_refused_by_every_service(running_platform: Platform) -> None:
    plat = running_platform
    ep = endpoints_for(plat)
    scenario = build(ScenarioConfig(seed=5, days=61, orders_per_day=1))
    run = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(timeout=30.0) as http:
        driver = Driver(ep, scenario, http, lambda _: None)
        await driver.wait_ready()
        session = await driver.register_and_sign_in(run)
        await driver.invite_member(session, run)
        assert session.member is not None
        member_auth = session.member.auth
        member_id = (await http.get(f"{ep.identity}/userinfo", headers=member_auth)).json()["sub"]
        calls = probes(plat, session.account_id)
        # Before the removal the token is accepted everywhere (answers vary: 200, 403 for billing, 404 ...).
        before = {name: await call(http, member_auth, probe) for name, probe in calls.items()}
        assert all(status != 401 for status in before.values()), before

        removed = await http.delete(
            f"{ep.identity}/v1/accounts/{session.account_id}/members/{member_id}", headers=session.owner.auth
        )
        assert removed.status_code == 204, removed.text
        since = time.monotonic()
        times = await asyncio.gather(*(refused_after(http, member_auth, probe, since) for probe in calls.values()))

    measured = dict(zip(calls, times, strict=True))
    print("\ntime until the removed member's token is refused (s):")
    for name, seconds in measured.items():
        print(f"  {name:<28} {'never' if seconds is None else f'{seconds:.2f}'}")
    never = [name for name, seconds in measured.items() if seconds is None]
    assert not never, f"still accepted after {DEADLINE_S} s: {never}"
