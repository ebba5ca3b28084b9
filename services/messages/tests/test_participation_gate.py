"""A buyer message that opens a thread needs the marketplace opened by the account (learned from
regions.subscriptions.v1): never opened -> 422 naming it; not learned yet -> 503 with Retry-After, and a
retrying client gets through once the opening arrives; messages on an existing thread go on."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from unified_shared.contracts.regions import ParticipationOpened
from unified_shared.testing import TestIssuer, publish_events
from unified_shared.testing_services import new_seller

from .support import DE, auth, message

Start = Callable[..., Awaitable[str]]
THREADS = "/messaging/v1/threads"
FR = "A13V1IB3VIYZZH"
AT = dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC)


async def post_retrying(http: httpx.AsyncClient, path: str, body: dict[str, Any], token: str) -> list[int]:
    seen: list[int] = []
    deadline = time.monotonic() + 30
    while True:
        response = await http.post(path, json=body, headers=auth(token))
        seen.append(response.status_code)
        if response.status_code != 503 or time.monotonic() > deadline:
            return seen
        assert response.headers["Retry-After"] == "1" and response.json()["field"] == "marketplace_id"
        await asyncio.sleep(float(response.headers["Retry-After"]) / 10)  # paced like a client, shortened


async def test_new_threads_only_in_opened_marketplaces(
    start_messages: Start, issuer: tuple[TestIssuer, str], kafka_bootstrap: str
) -> None:
    base, account, token = await new_seller(
        start_messages, issuer, "EU", participation_required=True, participation_wait_s=0.0
    )
    async with httpx.AsyncClient(base_url=base) as http:
        early = await http.post(
            f"{THREADS}/t-1/buyer-messages", json=message("2026-09-01T10:00:00Z"), headers=auth(token)
        )
        assert early.status_code == 503 and early.headers["Retry-After"] == "1", early.text
        await publish_events(kafka_bootstrap, ParticipationOpened(account_id=account, marketplace_id=DE, at=AT))
        seen = await post_retrying(http, f"{THREADS}/t-1/buyer-messages", message("2026-09-01T10:00:00Z"), token)
        assert seen[-1] == 201, seen
    # with the usual wait, a marketplace never opened is refused once the consumer has caught up
    base = await start_messages("EU", participation_required=True, participation_settle_s=0.2)
    await publish_events(kafka_bootstrap, ParticipationOpened(account_id=account, marketplace_id=DE, at=AT))
    async with httpx.AsyncClient(base_url=base) as http:
        refused = await http.post(
            f"{THREADS}/t-2/buyer-messages", json=message("2026-09-01T10:00:00Z", marketplace=FR), headers=auth(token)
        )
        assert refused.status_code == 422, refused.text
        assert (refused.json()["field"], refused.json()["marketplace_id"]) == ("marketplace_id", FR)
        assert "FR" in refused.json()["detail"]
        assert refused.json()["errors"][0]["code"] == "InvalidInput"
