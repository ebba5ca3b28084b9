"""Schemathesis over every service's OpenAPI document, with a real account and valid tokens.

Every service runs as its own process (``platform_processes``). An account is registered and its owner
signed in through OpenID Connect; the fuzzer then calls every operation with the owner's token and the
account's ID in ``{account_id}``, so generated data reaches the handlers, not only the token check. The
only verdict that matters here: no answer >= 500, and every service still ready afterwards (a poisoned
outbox row would turn readiness off).

``FUZZ_MAX_EXAMPLES`` (default 8) and ``FUZZ_PHASES`` size the run: ``make test`` keeps it short,
``make fuzz`` runs 200 examples per operation with the stateful phase too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from unified_demo.driver import Driver
from unified_demo.endpoints import Endpoints
from unified_demo.oidc import sign_in
from unified_demo.scenario import ScenarioConfig, build

from .platform_processes import Platform

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "8"))
PHASES = os.environ.get("FUZZ_PHASES", "coverage,fuzzing")
# One instance of each regional service is enough: the three run the same code.
TARGETS = ["identity", "regions", "orders-EU", "messages-EU", "billing", "seller_view"]


@pytest.fixture(scope="module")
def platform(infra: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    plat = Platform(infra.kafka, infra.pg_admin_dsn, tmp_path_factory.mktemp("fuzz"))
    plat.plan()
    plat.create_databases()
    try:
        plat.start_all()
        yield plat
    finally:
        plat.stop_all()
        plat.drop_databases()


def _endpoints(plat: Platform) -> Endpoints:
    s = plat.services
    return Endpoints(
        identity=s["identity"].url,
        regions=s["regions"].url,
        orders={r: s[f"orders-{r}"].url for r in ("NA", "EU", "FE")},
        messages={r: s[f"messages-{r}"].url for r in ("NA", "EU", "FE")},
        seller_view=s["seller_view"].url,
        billing=s["billing"].url,
        mail_dir=str(plat.workdir / "mail"),
        operator_token=plat.operator_token,
    )


@pytest.fixture(scope="module")
def account(platform: Platform) -> dict[str, str]:
    """A registered account with open marketplaces; its owner's e-mail and password to sign in again."""

    async def make() -> dict[str, str]:
        scenario = build(ScenarioConfig(seed=5, days=3, orders_per_day=2))
        async with httpx.AsyncClient(timeout=60.0) as http:
            driver = Driver(_endpoints(platform), scenario, http, lambda _: None)
            await driver.wait_ready()
            session = await driver.register_and_sign_in("fuzz")
            await driver.open_marketplaces(session)
        return {"account_id": session.account_id, "email": session.owner_email, "password": session.password}

    return asyncio.run(make())


def _schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    assert found, "schemathesis is not installed (make install)"
    return found


def _fresh_token(platform: Platform, account: dict[str, str]) -> str:
    ep = _endpoints(platform)
    tokens = asyncio.run(sign_in(ep.identity, ep.client_id, ep.redirect_uri, account["email"], account["password"]))
    return tokens.access_token


def _ready(platform: Platform) -> dict[str, int]:
    return {
        name: httpx.get(f"{svc.url}/health/ready", timeout=10).status_code
        for name, svc in platform.services.items()
        if name != "smtp"
    }


@pytest.mark.parametrize("target", TARGETS)
def test_no_input_answers_5xx_and_every_service_stays_ready(
    platform: Platform, account: dict[str, str], target: str, tmp_path: Path
) -> None:
    svc = platform.services[target]
    config = tmp_path / "schemathesis.toml"
    # The account's own ID in every {account_id}, so the calls pass the tenant check and reach the logic.
    config.write_text(f'[parameters]\n"path.account_id" = "{account["account_id"]}"\n')
    command = [
        _schemathesis(),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{svc.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {_fresh_token(platform, account)}",
        "--checks",
        "not_a_server_error",
        "--phases",
        PHASES,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "2",
        "--seed",
        os.environ.get("FUZZ_SEED", "20261129"),
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "30",
    ]
    # Run in the test's own folder: schemathesis keeps a cache of crashes in its working directory.
    result = subprocess.run(command, capture_output=True, text=True, timeout=7200, check=False, cwd=tmp_path)
    output = result.stdout + result.stderr
    # ST101 is schemathesis' "server error" (an answer >= 500): never tolerated.
    assert "ST101" not in output and "Server error" not in output, f"{target}: 5xx found\n{output[-12000:]}"
    # A known fault of the generator itself (hypothesis describing a strategy under CPython 3.11's ast) can
    # end a phase early; it is no answer of ours, so it does not fail the run, anything else does.
    tool_fault = "AST constructor recursion depth mismatch" in output
    assert result.returncode == 0 or tool_fault, f"{target}: schemathesis found failures\n{output[-12000:]}"
    assert "No operations" not in output, output[-2000:]
    not_ready = {name: status for name, status in _ready(platform).items() if status != 200}
    assert not not_ready, f"after fuzzing {target}, not ready: {not_ready}"


# -- the inputs that answered 500 before the bounds (issue 11), each refused with a 4xx naming the field ------
INFINITY_TOKEN = base64.urlsafe_b64encode(b'{"n": Infinity, "s": "created"}').decode().rstrip("=")
YEAR_1 = "0001-01-01T00:00:00+00:00"
YEAR_9999 = "9999-12-31T23:59:59Z"


def _order(**changes: Any) -> dict[str, Any]:
    order = {
        "AmazonOrderId": "302-1234567-7654321",
        "PurchaseDate": "2026-09-01T10:00:00Z",
        "LastUpdateDate": "2026-09-01T10:05:00Z",
        "OrderStatus": "Unshipped",
        "FulfillmentChannel": "MFN",
        "OrderTotal": {"CurrencyCode": "EUR", "Amount": "19.99"},
        "NumberOfItemsShipped": 0,
        "NumberOfItemsUnshipped": 2,
        "MarketplaceId": "A1PA6795UKMFR9",
    }
    return {**order, **changes}


def _message(**changes: Any) -> dict[str, Any]:
    body = {"marketplace_id": "A1PA6795UKMFR9", "subject": "Delivery", "body": "Where is it?"}
    return {**body, "received_at": "2026-09-01T10:00:00Z", **changes}


LONE_SURROGATE = json.dumps(_message(body="\ud800")).encode()  # json escapes it as \\ud800


def _registration(**changes: Any) -> dict[str, Any]:
    body = {"legal_name": "Hostile Ltd", "home_marketplace": "DE", "email": "h@example.com", "password": "x" * 16}
    return {**body, **changes}


def _hostile_requests(account_id: str) -> list[tuple[str, str, str, dict[str, Any], str]]:
    """(service, method, path, request keywords, the field the answer must name)."""
    a = account_id
    invitation = {"email": "a\x00b@example.com", "role": "member"}
    return [
        (
            "orders-EU",
            "POST",
            "/orders/v0/orders",
            {"json": _order(PurchaseDate=YEAR_1, LastUpdateDate=YEAR_1)},
            "PurchaseDate",
        ),
        ("orders-EU", "POST", "/orders/v0/orders", {"json": _order(LastUpdateDate=YEAR_9999)}, "LastUpdateDate"),
        (
            "orders-EU",
            "POST",
            "/orders/v0/orders",
            {"json": _order(NumberOfItemsShipped=2**31)},
            "NumberOfItemsShipped",
        ),
        (
            "orders-EU",
            "POST",
            "/orders/v0/orders",
            {"json": _order(OrderTotal={"CurrencyCode": "EUR", "Amount": "1" * 40})},
            "OrderTotal.Amount",
        ),
        (
            "orders-EU",
            "POST",
            "/orders/v0/orders/302-1234567-7654321/refunds",
            {
                "json": {
                    "RefundAmount": {"CurrencyCode": "EUR", "Amount": "1.00"},
                    "RefundedAt": "2026-09-02T10:00:00Z",
                    "RefundId": "r\x00",
                }
            },
            "RefundId",
        ),
        (
            "orders-EU",
            "GET",
            "/orders/v0/orders",
            {"params": {"MarketplaceIds": "A1PA6795UKMFR9", "CreatedAfter": YEAR_1}},
            "CreatedAfter",
        ),
        ("orders-EU", "GET", "/orders/v0/orders", {"params": {"NextToken": INFINITY_TOKEN}}, "NextToken"),
        ("messages-EU", "POST", "/messaging/v1/threads/t-1/buyer-messages", {"json": _message(body="a\x00b")}, "body"),
        (
            "messages-EU",
            "POST",
            "/messaging/v1/threads/t-1/buyer-messages",
            {"json": _message(subject="a\x00b")},
            "subject",
        ),
        (
            "messages-EU",
            "POST",
            "/messaging/v1/threads/t-1/buyer-messages",
            {"json": _message(message_id="m\x00")},
            "message_id",
        ),
        (
            "messages-EU",
            "POST",
            "/messaging/v1/threads/t-1/buyer-messages",
            {"content": LONE_SURROGATE, "headers": {"Content-Type": "application/json"}},
            "body",
        ),
        (
            "messages-EU",
            "POST",
            "/messaging/v1/threads/t-1/buyer-messages",
            {"json": _message(received_at=YEAR_1)},
            "received_at",
        ),
        (
            "messages-EU",
            "POST",
            "/messaging/v1/threads/t-1/replies",
            {"json": {"body": "ok", "replied_at": YEAR_9999}},
            "replied_at",
        ),
        ("messages-EU", "POST", "/messaging/v1/threads/t-1/no-response-needed", {"json": {"at": YEAR_1}}, "at"),
        ("messages-EU", "GET", "/messaging/v1/threads", {"params": {"as_of": YEAR_1}}, "as_of"),
        ("messages-EU", "GET", "/messaging/v1/threads", {"params": {"next_token": INFINITY_TOKEN}}, "next_token"),
        ("regions", "POST", f"/v1/accounts/{a}/participations/DE/suspend", {"json": {"reason": "a\x00b"}}, "reason"),
        ("identity", "POST", "/v1/accounts", {"json": _registration(legal_name="a\x00b")}, "legal_name"),
        (
            "identity",
            "POST",
            "/v1/accounts",
            {"json": _registration(legal_name="Evil\r\nBcc: x@example.com")},
            "legal_name",
        ),
        ("identity", "POST", "/v1/accounts", {"json": _registration(email="a\x00b@example.com")}, "email"),
        ("identity", "POST", f"/v1/accounts/{a}/invitations", {"json": invitation}, "email"),
        ("billing", "GET", f"/v1/accounts/{a}/invoices/INV%00", {}, "invoice_id"),
        ("billing", "GET", f"/v1/accounts/{a}/billing/preview", {"params": {"period": "0000-01"}}, "period"),
        ("billing", "GET", f"/v1/accounts/{a}/billing/preview", {"params": {"period": "9999-12"}}, "period"),
        ("billing", "POST", "/v1/billing/periods/0000-01/close", {"json": {"account_id": a}}, "period"),
        (
            "seller_view",
            "GET",
            f"/v1/accounts/{a}/overview",
            {"params": {"purchased_after": YEAR_1}},
            "purchased_after",
        ),
        (
            "seller_view",
            "GET",
            f"/v1/accounts/{a}/orders",
            {"params": {"purchased_before": YEAR_9999}},
            "purchased_before",
        ),
        ("seller_view", "GET", f"/v1/accounts/{a}/messages", {"params": {"as_of": YEAR_1}}, "as_of"),
    ]


def test_the_inputs_that_answered_500_are_refused_naming_the_field(platform: Platform, account: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {_fresh_token(platform, account)}"}
    wrong: list[str] = []
    for service, method, path, kwargs, field in _hostile_requests(account["account_id"]):
        headers = {**auth, **kwargs.pop("headers", {})}
        response = httpx.request(method, platform.services[service].url + path, headers=headers, timeout=30, **kwargs)
        is_problem = response.headers.get("content-type", "").startswith("application/problem+json")
        named = is_problem and response.json().get("field") == field
        if response.status_code != 422 or not named:
            wrong.append(f"{service} {method} {path} {field}: {response.status_code} {response.text[:300]}")
    # OAuth endpoints answer in their own (RFC 6749) format, never 500.
    identity = platform.services["identity"].url
    token = httpx.post(f"{identity}/token", data={"grant_type": "authorization_code", "client_id": "a\x00"}, timeout=30)
    if token.status_code != 400 or token.json().get("error") != "invalid_request":
        wrong.append(f"identity POST /token client_id NUL: {token.status_code} {token.text[:300]}")
    authorize = httpx.get(f"{identity}/authorize", params={"client_id": "a\x00", "response_type": "code"}, timeout=30)
    if not 400 <= authorize.status_code < 500:
        wrong.append(f"identity GET /authorize client_id NUL: {authorize.status_code}")
    assert not wrong, "\n".join(wrong)
    not_ready = {name: status for name, status in _ready(platform).items() if status != 200}
    assert not not_ready, f"not ready after the hostile inputs: {not_ready}"
