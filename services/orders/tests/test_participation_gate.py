"""New orders only for marketplaces the account has opened (learned from regions.subscriptions.v1): a
never-opened one is refused with 422 naming it; before a fresh opening is learned the answer is 503 with
Retry-After, and a client that retries gets through once the opening arrives."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from unified_shared.contracts.regions import ParticipationClosed, ParticipationOpened
from unified_shared.testing import TestIssuer
from unified_shared.testing import publish_events as publish
from unified_shared.testing_services import new_seller

from .support import DE, FR, UK, auth, order

Issuer = tuple[TestIssuer, str]
Start = Callable[..., Awaitable[str]]
AT = dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC)


async def post_retrying(http: httpx.AsyncClient, body: dict[str, Any], token: str, deadline_s: float = 30) -> list[int]:
    """A client honouring Retry-After: the statuses it saw, the last one final."""
    seen: list[int] = []
    deadline = time.monotonic() + deadline_s
    while True:
        response = await http.post("/orders/v0/orders", json=body, headers=auth(token))
        seen.append(response.status_code)
        if response.status_code != 503 or time.monotonic() > deadline:
            return seen
        assert response.headers["Retry-After"] == "1"
        assert response.json()["field"] == "MarketplaceId"
        await asyncio.sleep(float(response.headers["Retry-After"]) / 10)  # paced like a client, shortened


async def test_never_opened_marketplace_is_refused_naming_it_and_a_closed_one_too(
    start_orders: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    base, account, token = await new_seller(
        start_orders, issuer, "EU", participation_required=True, participation_settle_s=0.2
    )
    await publish(kafka_bootstrap, ParticipationOpened(account_id=account, marketplace_id=DE, at=AT))
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await post_retrying(http, order(marketplace=DE), token))[-1] == 200
        refused = await http.post("/orders/v0/orders", json=order(marketplace=FR), headers=auth(token))
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "MarketplaceId"
        assert "FR" in refused.json()["detail"] and refused.json()["marketplace_id"] == FR
        placed = order(marketplace=DE)
        assert (await http.post("/orders/v0/orders", json=placed, headers=auth(token))).status_code == 200
        await publish(kafka_bootstrap, ParticipationClosed(account_id=account, marketplace_id=DE, at=AT))
        statuses = []
        for _ in range(100):  # until the close is learned: then new DE orders are refused
            response = await http.post("/orders/v0/orders", json=order(marketplace=DE), headers=auth(token))
            statuses.append(response.status_code)
            if response.status_code == 422:
                break
        assert statuses[-1] == 422 and "closed" in response.json()["detail"]
        # an order placed while open still moves on after the close
        shipped = {**placed, "OrderStatus": "Shipped", "LastUpdateDate": "2026-09-02T08:00:00Z"}
        shipped["NumberOfItemsShipped"], shipped["NumberOfItemsUnshipped"] = 2, 0
        assert (await http.post("/orders/v0/orders", json=shipped, headers=auth(token))).status_code == 200


async def test_before_a_fresh_opening_is_learned_the_answer_is_retriable(
    start_orders: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    # No waiting inside the request: what the service has not learned yet is answered 503 + Retry-After at once.
    base, account, token = await new_seller(
        start_orders, issuer, "EU", participation_required=True, participation_wait_s=0.0
    )
    async with httpx.AsyncClient(base_url=base) as http:
        first = await http.post("/orders/v0/orders", json=order(marketplace=UK), headers=auth(token))
        assert first.status_code == 503, first.text
        assert first.headers["Retry-After"] == "1"
        assert first.json()["errors"][0]["code"] == "ServiceUnavailable"  # SP-API clients see it too
        await publish(kafka_bootstrap, ParticipationOpened(account_id=account, marketplace_id=UK, at=AT))
        seen = await post_retrying(http, order(marketplace=UK), token)
    assert seen[-1] == 200, seen
