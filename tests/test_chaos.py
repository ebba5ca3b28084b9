"""Chaos: the whole platform under steady load while PostgreSQL, then the Kafka broker, are stopped (issue 18).

Runs only under ``make chaos`` (CHAOS=1), on a Kafka and PostgreSQL of its own that it stops and starts with
``deploy/infra.sh``. Checks what clients and operators rely on during and after an outage:

- every acknowledged write (order, status change, buyer message) is in the unified view exactly once;
- every failed request was a 503 ``application/problem+json`` with ``Retry-After`` (no 500, no text/plain),
  on every service, identity included, and no stack trace was logged per request;
- readiness returned within 2 s of the database coming back (issue 18.2: the figure is the requirement);
- the degraded state was visible during the broker outage (health detail and seller_view's ``/freshness``);
- log volume stayed under ~1 line/s per service during the broker outage (and the database outage).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from unified_demo.driver import Driver, Session
from unified_demo.scenario import ScenarioConfig, build
from unified_shared import catalog

from .platform_processes import Platform
from .test_e2e import endpoints_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get("CHAOS") != "1", reason="stops the infrastructure: run by `make chaos`"),
]

ROOT = Path(__file__).resolve().parents[1]
MARKETS = ("US", "DE", "JP")  # one per region: every orders and messages instance takes load
DB_OUTAGE_S = 12.0
BROKER_OUTAGE_S = 30.0
READY_AFTER_DB_S = 2.0


@dataclass(slots=True)
class Ledger:
    """What the load sent and how it was answered: the basis of every check."""

    placed: dict[str, str] = field(default_factory=dict)  # acknowledged order -> acknowledged status
    unsure: set[str] = field(default_factory=set)  # orders whose write failed: may or may not be in the view
    threads: set[str] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)
    bad_failures: list[str] = field(default_factory=list)
    retriable: Counter[str] = field(default_factory=Counter)

    def judge(self, service: str, response: httpx.Response) -> bool:
        """True when acknowledged; a failure must be a 503 problem with Retry-After."""
        self.answers[f"{service} {response.status_code}"] += 1
        if response.status_code < 400:
            return True
        kind = response.headers.get("content-type", "")
        if (
            response.status_code == 503
            and kind.startswith("application/problem+json")
            and "retry-after" in (response.headers)
        ):
            self.retriable[service] += 1
        else:
            self.bad_failures.append(f"{service}: {response.status_code} {kind} {response.text[:200]}")
        return False


def infra(command: str) -> None:
    subprocess.run([str(ROOT / "deploy" / "infra.sh"), command], check=True, cwd=ROOT, capture_output=True)


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def log_lines(plat: Platform) -> dict[str, int]:
    return {n: len(s.log_path.read_bytes().splitlines()) for n, s in plat.services.items() if s.log_path.exists()}


@pytest.fixture
def platform(infra: Any, tmp_path: Path) -> Any:
    plat = Platform(infra.kafka, infra.pg_admin_dsn, tmp_path)
    plat.plan()
    for svc in plat.services.values():
        svc.env["OUTBOX_DEGRADED_AFTER_S"] = "10"  # visible well inside the broker outage
    plat.create_databases()
    try:
        plat.start_all()
        yield plat
    finally:
        plat.stop_all()
        plat.drop_databases()


class Load:
    """Steady writes through the public APIs: new orders, status changes, buyer messages; and reads of
    identity, regions and billing so that every service meets the outages."""

    def __init__(self, plat: Platform, http: httpx.AsyncClient, session: Session, ledger: Ledger) -> None:
        self.plat, self.http, self.session, self.ledger = plat, http, session, ledger
        self.stop = asyncio.Event()
        self.n = 0

    async def _send(self, service: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        try:
            response = await self.http.request(method, url, headers=self.session.owner.auth, **kwargs)
        except httpx.TransportError as exc:
            self.ledger.bad_failures.append(f"{service}: no answer ({type(exc).__name__})")
            return None
        return response

    async def orders(self, code: str) -> None:
        market = catalog.resolve(code)
        region = market.region.value
        url = f"{self.plat.services[f'orders-{region}'].url}/orders/v0/orders"
        while not self.stop.is_set():
            self.n += 1
            oid = f"{self.n % 1000:03d}-{uuid.uuid4().int % 10**7:07d}-{uuid.uuid4().int % 10**7:07d}"
            order = {
                "AmazonOrderId": oid,
                "PurchaseDate": now(),
                "LastUpdateDate": now(),
                "OrderStatus": "Unshipped",
                "FulfillmentChannel": "MFN",
                "OrderTotal": {"CurrencyCode": market.currency, "Amount": "25" if market.currency == "JPY" else "12.5"},
                "NumberOfItemsShipped": 0,
                "NumberOfItemsUnshipped": 1,
                "MarketplaceId": market.marketplace_id,
            }
            answer = await self._send(f"orders-{region}", "POST", url, json={"Orders": [order]})
            if answer is not None and self.ledger.judge(f"orders-{region}", answer):
                assert answer.json()["results"][0]["outcome"] == "placed", answer.text
                self.ledger.placed[oid] = "Unshipped"
            else:  # the buyer message below goes out all the same: the messages services meet the outage too
                self.ledger.unsure.add(oid)
            shipped = order | {"OrderStatus": "Shipped", "LastUpdateDate": now(), "NumberOfItemsShipped": 1}
            shipped["NumberOfItemsUnshipped"] = 0
            if oid not in self.ledger.unsure:
                answer = await self._send(f"orders-{region}", "POST", url, json={"Orders": [shipped]})
                if answer is not None and self.ledger.judge(f"orders-{region}", answer):
                    self.ledger.placed[oid] = "Shipped"
                else:
                    self.ledger.unsure.add(oid)
            thread = f"T-{oid}"
            base = f"{self.plat.services[f'messages-{region}'].url}/messaging/v1/threads/{thread}"
            body = {
                "marketplace_id": market.marketplace_id,
                "message_id": f"{thread}-M1",
                "amazon_order_id": oid,
                "subject": "Where is my parcel?",
                "body": f"Hello, about order {oid}.",
                "received_at": now(),
            }
            answer = await self._send(f"messages-{region}", "POST", f"{base}/buyer-messages", json=body)
            if answer is not None and self.ledger.judge(f"messages-{region}", answer):
                self.ledger.threads.add(thread)
            await asyncio.sleep(0.15)  # pacing of the load, not a wait for a condition

    async def reads(self) -> None:
        s, account = self.plat.services, self.session.account_id
        targets = [
            ("identity", f"{s['identity'].url}/v1/accounts/{account}/members"),
            ("regions", f"{s['regions'].url}/v1/accounts/{account}/participations"),
            ("billing", f"{s['billing'].url}/v1/accounts/{account}/billing/preview"),
            ("seller_view", f"{s['seller_view'].url}/v1/accounts/{account}/overview"),
        ]
        while not self.stop.is_set():
            for service, url in targets:
                answer = await self._send(service, "GET", url)
                if answer is not None:
                    self.ledger.judge(service, answer)
            await asyncio.sleep(0.3)

    def run(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.orders(code)) for code in MARKETS] + [asyncio.create_task(self.reads())]


async def ready_times(http: httpx.AsyncClient, plat: Platform, timeout_s: float = 60.0) -> dict[str, float]:
    """Seconds from now until each service's readiness answers 200 again."""
    start = time.monotonic()

    async def one(name: str) -> tuple[str, float]:
        while time.monotonic() - start < timeout_s:
            try:
                if (await http.get(f"{plat.services[name].url}/health/ready", timeout=1.0)).status_code == 200:
                    return name, time.monotonic() - start
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        return name, float("inf")

    names = [n for n in plat.services if n != "smtp"]
    return dict(await asyncio.gather(*(one(n) for n in names)))


async def watch_degraded(http: httpx.AsyncClient, plat: Platform, session: Session, until: float) -> dict[str, Any]:
    """What health and /freshness said during the broker outage."""
    seen: dict[str, Any] = {"degraded": set(), "freshness": set(), "fresh_lag_zero": 0}
    view = plat.services["seller_view"].url
    while time.monotonic() < until:
        for name, svc in plat.services.items():
            if name == "smtp":
                continue
            try:
                answer = await http.get(f"{svc.url}/health/ready", timeout=2.0)
                if answer.json().get("detail", answer.json()).get("degraded"):
                    seen["degraded"].add(name)
            except (httpx.TransportError, ValueError, AttributeError):
                pass
        try:
            fresh = await http.get(
                f"{view}/v1/accounts/{session.account_id}/freshness", headers=session.owner.auth, timeout=2.0
            )
            body = fresh.json()
            seen["freshness"].add(body.get("broker"))
            if body.get("broker") == "unreachable" and body.get("total_lag") == 0:
                seen["fresh_lag_zero"] += 1
        except (httpx.TransportError, ValueError):
            pass
        await asyncio.sleep(1.0)
    return seen


async def view_contents(
    http: httpx.AsyncClient, plat: Platform, session: Session
) -> tuple[Counter[str], dict[str, str]]:
    base = f"{plat.services['seller_view'].url}/v1/accounts/{session.account_id}"
    counts: Counter[str] = Counter()
    statuses: dict[str, str] = {}
    token: str | None = None
    while True:
        params: dict[str, Any] = {"max_results": 100} | ({"next_token": token} if token else {})
        page = (await http.get(f"{base}/orders", params=params, headers=session.owner.auth)).json()
        for o in page["orders"]:
            counts[o["amazon_order_id"]] += 1
            statuses[o["amazon_order_id"]] = o["order_status"]
        token = page.get("next_token")
        if not token:
            return counts, statuses


async def test_outages_under_load(platform: Platform) -> None:
    ledger = Ledger()
    ep = endpoints_for(platform)
    async with httpx.AsyncClient(timeout=30.0) as http:
        driver = Driver(ep, build(ScenarioConfig(seed=3, days=61, orders_per_day=1)), http, lambda _s: None)
        await driver.wait_ready()
        session = await driver.register_and_sign_in("chaos")
        await driver.open_marketplaces(session)
        load = Load(platform, http, session, ledger)
        tasks = load.run()
        try:
            await asyncio.sleep(5.0)  # steady load before the first fault
            # -- PostgreSQL stopped ------------------------------------------------------------------
            db_lines = log_lines(platform)
            db_start = time.monotonic()
            await asyncio.to_thread(infra, "pg-down")
            await asyncio.sleep(DB_OUTAGE_S)
            await asyncio.to_thread(infra, "pg-up")  # returns once PostgreSQL accepts clients
            ready_after_db = await ready_times(http, platform)
            db_traces = {
                n: s.log_path.read_text(errors="replace").count("Traceback") for n, s in platform.services.items()
            }
            db_log = {n: c - db_lines.get(n, 0) for n, c in log_lines(platform).items()}
            db_s = time.monotonic() - db_start
            await asyncio.sleep(5.0)
            # -- Kafka broker stopped ----------------------------------------------------------------
            await asyncio.to_thread(infra, "kafka-down")
            broker_start = time.monotonic()
            broker_lines = log_lines(platform)
            seen = await watch_degraded(http, platform, session, broker_start + BROKER_OUTAGE_S)
            broker_log = {n: c - broker_lines.get(n, 0) for n, c in log_lines(platform).items()}
            broker_s = time.monotonic() - broker_start
            await asyncio.to_thread(infra, "kafka-up")
            await asyncio.sleep(5.0)
        finally:
            load.stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

        # -- the view converges on every acknowledged write, each once ---------------------------------
        deadline = time.monotonic() + 240.0
        counts: Counter[str] = Counter()
        statuses: dict[str, str] = {}
        listed: Counter[str] = Counter()
        while time.monotonic() < deadline:
            counts, statuses = await view_contents(http, platform, session)
            messages = await http.get(
                f"{platform.services['seller_view'].url}/v1/accounts/{session.account_id}/messages",
                headers=session.owner.auth,
            )
            listed = (
                Counter(t["thread_id"] for t in messages.json()["threads"]) if messages.status_code == 200 else listed
            )
            shipped_ok = all(statuses.get(o) == s for o, s in ledger.placed.items() if o not in ledger.unsure)
            if set(ledger.placed) <= set(counts) and shipped_ok and ledger.threads <= set(listed):
                break
            await asyncio.sleep(1.0)

    report = (
        f"answers {dict(ledger.answers)}; 503s {dict(ledger.retriable)}; ready after db {ready_after_db}; "
        f"db-outage log lines {db_log} in {db_s:.0f} s; "
        f"broker-outage log lines {broker_log} in {broker_s:.0f} s; seen {seen}"
    )
    print(report)
    assert ledger.placed and ledger.threads, report
    assert not ledger.bad_failures, ledger.bad_failures[:20]
    # The database outage was met by every service and answered as retriable.
    every = {n for n in platform.services if n not in ("smtp", "web")}  # web is a browser front end: no load here
    assert every <= set(ledger.retriable), report
    missing = set(ledger.placed) - set(counts)
    assert not missing, f"{len(missing)} acknowledged orders missing from the view"
    assert all(counts[o] == 1 for o in counts), [o for o, c in counts.items() if c != 1]
    assert set(counts) <= set(ledger.placed) | ledger.unsure
    wrong = {
        o: (s, statuses.get(o)) for o, s in ledger.placed.items() if o not in ledger.unsure and statuses.get(o) != s
    }
    assert not wrong, wrong
    assert ledger.threads <= set(listed), ledger.threads - set(listed)
    assert all(c == 1 for c in listed.values())
    assert max(ready_after_db.values()) <= READY_AFTER_DB_S, ready_after_db
    assert all(n <= 3 for n in db_traces.values()), f"stack traces logged per request: {db_traces}"
    too_loud_db = {n: c for n, c in db_log.items() if c > db_s}
    assert not too_loud_db, f"more than 1 line/s during the database outage: {too_loud_db}"
    publishing = {n for n in platform.services if n.startswith(("orders-", "messages-"))} | {"seller_view"}
    assert publishing <= seen["degraded"], report
    assert "unreachable" in seen["freshness"] and seen["fresh_lag_zero"] == 0, report
    too_loud = {n: c for n, c in broker_log.items() if c > broker_s}
    assert not too_loud, f"more than 1 line/s during the broker outage: {too_loud}"
