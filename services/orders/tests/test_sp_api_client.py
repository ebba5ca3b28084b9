"""python-amazon-sp-api, unmodified, against a running orders service: it sends its token in
``x-amz-access-token`` (no bearer header); getOrders pages with NextToken, getOrder reads one order."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sp_api.api import Orders
from sp_api.auth import AccessTokenResponse
from sp_api.base import Marketplaces, SellingApiForbiddenException

from unified_shared.testing_services import new_seller

from .support import DE, FR, auth, order
from .test_orders_api import Issuer, Start

LWA = {"lwa_app_id": "local-app", "lwa_client_secret": "unused", "refresh_token": "unused"}


def token_client(token: str) -> type:
    """The client's pluggable token source, handing it our access token instead of calling LWA."""

    class _Given:
        def __init__(self, **_: Any) -> None:
            pass

        def get_auth(self) -> AccessTokenResponse:
            return AccessTokenResponse(access_token=token, token_type="bearer", expires_in=600)

    return _Given


def sp_orders(base: str, token: str) -> Any:
    client = Orders(marketplace=Marketplaces.DE, credentials=LWA, auth_token_client_class=token_client(token))
    client.endpoint = base  # the shipped client targets Amazon's host; point it at the local service
    return client


async def test_unmodified_sp_api_client_pages_get_orders_and_reads_get_order(
    start_orders: Start, issuer: Issuer
) -> None:
    base, _account, token = await new_seller(start_orders, issuer)
    placed = [
        order(
            marketplace=DE if n % 2 else FR,
            purchased=f"2026-09-{n + 1:02d}T10:00:00Z",
            updated=f"2026-09-{n + 1:02d}T11:00:00Z",
        )
        for n in range(5)
    ]
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/orders/v0/orders", json={"Orders": placed}, headers=auth(token))
        assert [r["outcome"] for r in response.json()["results"]] == ["placed"] * 5, response.text

    def read_all() -> tuple[list[list[str]], dict[str, Any]]:
        client = sp_orders(base, token)
        pages: list[list[str]] = []
        kwargs: dict[str, Any] = {
            "CreatedAfter": "2026-08-01T00:00:00Z",
            "MarketplaceIds": [DE, FR],
            "MaxResultsPerPage": 2,
        }
        while True:
            page = client.get_orders(**kwargs)
            pages.append([o["AmazonOrderId"] for o in page.payload["Orders"]])
            if not page.next_token:
                break
            kwargs = {"NextToken": page.next_token, "MarketplaceIds": [DE, FR]}
        one = client.get_order(placed[3]["AmazonOrderId"]).payload
        return pages, one

    pages, one = await asyncio.to_thread(read_all)
    assert pages == [[o["AmazonOrderId"] for o in placed[i : i + 2]] for i in (0, 2, 4)]
    assert one["AmazonOrderId"] == placed[3]["AmazonOrderId"]
    assert one["OrderTotal"] == {"CurrencyCode": "EUR", "Amount": "19.99"}
    assert one["MarketplaceId"] == DE


async def test_x_amz_access_token_is_validated_like_a_bearer(start_orders: Start, issuer: Issuer) -> None:
    base = await start_orders("EU")
    token = issuer[0].mint(account_id=uuid.uuid4())
    params = {"CreatedAfter": "2026-08-01T00:00:00Z", "MarketplaceIds": DE}
    async with httpx.AsyncClient(base_url=base) as http:
        ok = await http.get("/orders/v0/orders", params=params, headers={"x-amz-access-token": token})
        forged = await http.get("/orders/v0/orders", params=params, headers={"x-amz-access-token": token[:-4] + "AAAA"})
        other = issuer[0].mint(account_id=uuid.uuid4())
        both = await http.get("/orders/v0/orders", params=params, headers={"x-amz-access-token": token, **auth(other)})
        none = await http.get("/orders/v0/orders", params=params)
    assert ok.status_code == 200, ok.text
    assert (forged.status_code, both.status_code, none.status_code) == (401, 401, 401)
    assert forged.headers["content-type"].startswith("application/problem+json")

    def member_outside_scope() -> None:
        scoped = issuer[0].mint(account_id=uuid.uuid4(), role="member", permissions=["orders"], marketplaces=[FR])
        sp_orders(base, scoped).get_orders(CreatedAfter="2026-08-01T00:00:00Z", MarketplaceIds=[DE])

    try:
        await asyncio.to_thread(member_outside_scope)
    except SellingApiForbiddenException:
        pass
    else:
        raise AssertionError("a member outside its scope must get 403 through the SP-API client too")
