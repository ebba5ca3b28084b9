"""The orders service against the real Kafka and PostgreSQL: idempotency, refusals, batches, refunds,
getOrders, scope, regions, and the events as they arrive on the topic."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from unified_shared.testing import TestIssuer, TopicWatcher
from unified_shared.testing_services import check_stream, new_seller
from unified_shared.topics import ORDERS

from .support import DE, FR, JP, UK, US, auth, events_until_marker, order, order_id

Start = Callable[[str], Awaitable[str]]
Issuer = tuple[TestIssuer, str]


def names(records: list[Any]) -> Counter[tuple[str, str]]:
    return Counter((r.headers["ce_type"].split(".")[2], r.value["amazon_order_id"]) for r in records)


async def test_same_batch_twice_publishes_each_event_once(
    start_orders: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    base, account, token = await new_seller(start_orders, issuer)
    batch = [order(marketplace=DE), order(marketplace=FR), order(marketplace=UK, status="Pending")]
    async with TopicWatcher(kafka_bootstrap, [ORDERS]) as watcher, httpx.AsyncClient(base_url=base) as http:
        first = await http.post("/orders/v0/orders", json={"Orders": batch}, headers=auth(token))
        assert first.status_code == 200, first.text
        assert [r["outcome"] for r in first.json()["results"]] == ["placed"] * 3
        again = await http.post("/orders/v0/orders", json={"Orders": batch}, headers=auth(token))
        assert [r["outcome"] for r in again.json()["results"]] == ["unchanged"] * 3
        shipped = {**batch[0], "OrderStatus": "Shipped", "LastUpdateDate": "2026-09-02T08:00:00Z"}
        shipped["NumberOfItemsShipped"], shipped["NumberOfItemsUnshipped"] = 2, 0
        for expected in ("updated", "unchanged"):
            response = await http.post("/orders/v0/orders", json=shipped, headers=auth(token))
            assert response.json()["results"][0]["outcome"] == expected
        marker = order_id()
        await http.post("/orders/v0/orders", json=order(marker), headers=auth(token))
        seen = await events_until_marker(watcher, account, marker)
    ids = [o["AmazonOrderId"] for o in batch]
    assert names(seen) == Counter(
        [("OrderPlaced", ids[0]), ("OrderPlaced", ids[1]), ("OrderPlaced", ids[2]), ("OrderStatusChanged", ids[0])]
    )
    changed = next(r.value for r in seen if r.headers["ce_type"].endswith("OrderStatusChanged.v1"))
    assert (changed["from_status"], changed["to_status"]) == ("Unshipped", "Shipped")


async def test_each_refused_input_gets_its_problem_and_publishes_nothing(
    start_orders: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    base, account, token = await new_seller(start_orders, issuer)
    shipped = order(status="Shipped", updated="2026-09-02T10:00:00Z", shipped=2, unshipped=0)
    canceled = order(status="Canceled", updated="2026-09-02T10:00:00Z", unshipped=0)
    cases: list[tuple[dict[str, Any], int, str]] = [
        (order(amount="-5.00"), 422, "OrderTotal.Amount"),
        (order(amount="5,00"), 422, "OrderTotal.Amount"),
        (order(amount="5.001"), 422, "OrderTotal.Amount"),
        (order(currency="USD"), 422, "OrderTotal.CurrencyCode"),
        (order(marketplace=UK, currency="EUR"), 422, "OrderTotal.CurrencyCode"),
        ({**order(), "AmazonOrderId": "1-2-3"}, 422, "AmazonOrderId"),
        (order(status="Returned"), 422, "OrderStatus"),
        (order(marketplace=US), 422, "MarketplaceId"),
        ({**shipped, "OrderStatus": "Pending", "LastUpdateDate": "2026-09-03T10:00:00Z"}, 409, "OrderStatus"),
        ({**canceled, "OrderStatus": "Unshipped", "LastUpdateDate": "2026-09-03T10:00:00Z"}, 409, "OrderStatus"),
        ({**shipped, "LastUpdateDate": "2026-09-02T09:00:00Z"}, 409, "LastUpdateDate"),
    ]
    async with TopicWatcher(kafka_bootstrap, [ORDERS]) as watcher, httpx.AsyncClient(base_url=base) as http:
        for existing in (shipped, canceled):
            placed = await http.post("/orders/v0/orders", json=existing, headers=auth(token))
            assert placed.json()["results"][0]["outcome"] == "placed"
        for body, status, field in cases:
            response = await http.post("/orders/v0/orders", json=body, headers=auth(token))
            assert response.status_code == status, (field, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert problem["field"] == field, problem
            assert problem["AmazonOrderId"] == body["AmazonOrderId"]
            if field == "MarketplaceId":
                assert problem["region"] == "NA" and "NA instance" in problem["detail"]
        # The stored orders kept their state.
        stored = await http.get(f"/orders/v0/orders/{shipped['AmazonOrderId']}", headers=auth(token))
        assert stored.json()["payload"]["OrderStatus"] == "Shipped"
        marker = order_id()
        await http.post("/orders/v0/orders", json=order(marker), headers=auth(token))
        seen = await events_until_marker(watcher, account, marker)
    assert names(seen) == Counter(
        [("OrderPlaced", shipped["AmazonOrderId"]), ("OrderPlaced", canceled["AmazonOrderId"])]
    ), "a refused order published an event"


async def test_mixed_batch_applies_only_the_valid_orders(
    start_orders: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    base, account, token = await new_seller(start_orders, issuer)
    good1, bad1, good2, bad2 = order(), order(amount="-1.00"), order(marketplace=FR), order(marketplace=US)
    async with TopicWatcher(kafka_bootstrap, [ORDERS]) as watcher, httpx.AsyncClient(base_url=base) as http:
        response = await http.post(
            "/orders/v0/orders", json={"Orders": [good1, bad1, good2, bad2]}, headers=auth(token)
        )
        assert response.status_code == 200
        results = response.json()["results"]
        assert [r["outcome"] for r in results] == ["placed", "rejected", "placed", "rejected"]
        assert results[1]["problem"]["field"] == "OrderTotal.Amount"
        assert results[1]["problem"]["status"] == 422
        assert results[3]["problem"]["field"] == "MarketplaceId"
        listed = await http.get(
            "/orders/v0/orders",
            params={"MarketplaceIds": f"{DE},{FR}", "CreatedAfter": "2026-01-01T00:00:00Z"},
            headers=auth(token),
        )
        assert {o["AmazonOrderId"] for o in listed.json()["payload"]["Orders"]} == {
            good1["AmazonOrderId"],
            good2["AmazonOrderId"],
        }
        too_many = await http.post(
            "/orders/v0/orders", json={"Orders": [order() for _ in range(101)]}, headers=auth(token)
        )
        assert too_many.status_code == 422 and too_many.json()["field"] == "Orders"
        marker = order_id()
        await http.post("/orders/v0/orders", json=order(marker), headers=auth(token))
        seen = await events_until_marker(watcher, account, marker)
    assert names(seen) == Counter([("OrderPlaced", good1["AmazonOrderId"]), ("OrderPlaced", good2["AmazonOrderId"])])


async def test_refunds_are_bounded_and_idempotent(start_orders: Start, issuer: Issuer, kafka_bootstrap: str) -> None:
    base, account, token = await new_seller(start_orders, issuer)
    sold = order(status="Shipped", amount="30.00", shipped=2, unshipped=0)
    oid = sold["AmazonOrderId"]
    refund = {"RefundAmount": {"CurrencyCode": "EUR", "Amount": "20.00"}, "RefundedAt": "2026-09-05T09:00:00Z"}
    async with TopicWatcher(kafka_bootstrap, [ORDERS]) as watcher, httpx.AsyncClient(base_url=base) as http:
        await http.post("/orders/v0/orders", json=sold, headers=auth(token))
        url = f"/orders/v0/orders/{oid}/refunds"
        first = await http.post(url, json=refund, headers=auth(token))
        assert first.status_code == 200, first.text
        assert first.json()["outcome"] == "refunded"
        second = await http.post(url, json=refund, headers=auth(token))
        assert (second.json()["outcome"], second.json()["RefundId"]) == ("unchanged", first.json()["RefundId"])
        over = await http.post(url, json={**refund, "RefundedAt": "2026-09-06T09:00:00Z"}, headers=auth(token))
        assert (over.status_code, over.json()["field"]) == (422, "RefundAmount.Amount")
        wrong = {"RefundAmount": {"CurrencyCode": "GBP", "Amount": "1.00"}, "RefundedAt": "2026-09-06T09:00:00Z"}
        currency = await http.post(url, json=wrong, headers=auth(token))
        assert (currency.status_code, currency.json()["field"]) == (422, "RefundAmount.CurrencyCode")
        missing = await http.post(f"/orders/v0/orders/{order_id()}/refunds", json=refund, headers=auth(token))
        assert missing.status_code == 404
        rest = {"RefundAmount": {"CurrencyCode": "EUR", "Amount": "10.00"}, "RefundedAt": "2026-09-07T09:00:00Z"}
        last = await http.post(url, json=rest, headers=auth(token))
        assert last.json()["RefundedTotal"] == {"CurrencyCode": "EUR", "Amount": "30.00"}
        got = await http.get(f"/orders/v0/orders/{oid}", headers=auth(token))
        assert got.json()["payload"]["RefundedTotal"]["Amount"] == "30.00"
        marker = order_id()
        await http.post("/orders/v0/orders", json=order(marker), headers=auth(token))
        seen = await events_until_marker(watcher, account, marker)
    refunds = [r.value for r in seen if r.headers["ce_type"].endswith("OrderRefunded.v1")]
    assert [(r["amount"]["amount"], r["total_refunded"]["amount"]) for r in refunds] == [
        ("20.00", "20.00"),
        ("10.00", "30.00"),
    ]


async def test_get_orders_keyset_pages_and_filters(start_orders: Start, issuer: Issuer) -> None:
    base = await start_orders("EU")
    token = issuer[0].mint(account_id=uuid.uuid4())
    made = [
        order(purchased=f"2026-09-0{day}T10:00:00Z", updated=f"2026-09-0{day}T11:00:00Z", status=status)
        for day, status in ((1, "Unshipped"), (2, "Pending"), (3, "Unshipped"), (4, "Unshipped"), (5, "Pending"))
    ]
    async with httpx.AsyncClient(base_url=base) as http:
        await http.post("/orders/v0/orders", json={"Orders": made}, headers=auth(token))
        params: dict[str, Any] = {"MarketplaceIds": DE, "CreatedAfter": "2026-09-01T00:00:00Z", "MaxResultsPerPage": 2}
        pages: list[list[str]] = []
        while True:
            response = await http.get("/orders/v0/orders", params=params, headers=auth(token))
            assert response.status_code == 200, response.text
            payload = response.json()["payload"]
            pages.append([o["AmazonOrderId"] for o in payload["Orders"]])
            if "NextToken" not in payload:
                break
            params = {"NextToken": payload["NextToken"]}
        assert pages == [[o["AmazonOrderId"] for o in made[i : i + 2]] for i in (0, 2, 4)]

        filtered = await http.get(
            "/orders/v0/orders",
            params={"MarketplaceIds": DE, "LastUpdatedAfter": "2026-09-02T00:00:00Z", "OrderStatuses": "Pending"},
            headers=auth(token),
        )
        assert [o["AmazonOrderId"] for o in filtered.json()["payload"]["Orders"]] == [
            made[1]["AmazonOrderId"],
            made[4]["AmazonOrderId"],
        ]
        first = filtered.json()["payload"]["Orders"][0]
        assert first["OrderTotal"] == {"CurrencyCode": "EUR", "Amount": "19.99"}
        assert first["PurchaseDate"] == "2026-09-02T10:00:00Z"

        bad = {
            "MarketplaceIds": ({"CreatedAfter": "2026-09-01T00:00:00Z"}),
            "CreatedAfter": ({"MarketplaceIds": DE}),
            "MaxResultsPerPage": (
                {"MarketplaceIds": DE, "CreatedAfter": "2026-09-01T00:00:00Z", "MaxResultsPerPage": 101}
            ),
            "NextToken": ({"NextToken": "not-a-token"}),
            "OrderStatuses": ({"MarketplaceIds": DE, "CreatedAfter": "2026-09-01T00:00:00Z", "OrderStatuses": "Lost"}),
        }
        for field, query in bad.items():
            response = await http.get("/orders/v0/orders", params=query, headers=auth(token))
            assert (response.status_code, response.json().get("field")) == (422, field), response.text


async def test_scoped_member_and_permissions(start_orders: Start, issuer: Issuer) -> None:
    base, account, owner = await new_seller(start_orders, issuer)
    test_issuer = issuer[0]
    member = test_issuer.mint(account_id=account, role="member", permissions=["orders"], marketplaces=[DE, FR])
    no_orders = test_issuer.mint(account_id=account, role="member", permissions=["messages"], marketplaces="*")
    uk_order = order(marketplace=UK)
    async with httpx.AsyncClient(base_url=base) as http:
        refused = await http.post("/orders/v0/orders", json=uk_order, headers=auth(member))
        assert (refused.status_code, refused.json()["field"]) == (403, "MarketplaceId")
        assert (await http.post("/orders/v0/orders", json=order(), headers=auth(member))).status_code == 200
        assert (await http.post("/orders/v0/orders", json=uk_order, headers=auth(owner))).status_code == 200
        query = {"MarketplaceIds": UK, "CreatedAfter": "2026-01-01T00:00:00Z"}
        read = await http.get("/orders/v0/orders", params=query, headers=auth(member))
        assert read.status_code == 403
        single = await http.get(f"/orders/v0/orders/{uk_order['AmazonOrderId']}", headers=auth(member))
        assert single.status_code == 404
        refund = {"RefundAmount": {"CurrencyCode": "GBP", "Amount": "1.00"}, "RefundedAt": "2026-09-05T00:00:00Z"}
        scoped_refund = await http.post(
            f"/orders/v0/orders/{uk_order['AmazonOrderId']}/refunds", json=refund, headers=auth(member)
        )
        # Outside the scope a refund finds no order, as getOrder does: the order's existence is not confirmed.
        assert scoped_refund.status_code == 404
        own = {k: scoped_refund.json()[k] for k in ("instance", "request_id") if k in scoped_refund.json()}
        assert scoped_refund.json() == single.json() | own  # the same answer but for the request's own fields
        assert (await http.post("/orders/v0/orders", json=order(), headers=auth(no_orders))).status_code == 403
        assert (await http.get("/orders/v0/orders", params=query, headers=auth(no_orders))).status_code == 403
        assert (await http.post("/orders/v0/orders", json=order())).status_code == 401
        other_account = test_issuer.mint(account_id=uuid.uuid4())
        foreign = await http.get(f"/orders/v0/orders/{uk_order['AmazonOrderId']}", headers=auth(other_account))
        assert foreign.status_code == 404


async def test_three_regional_instances_each_accept_only_their_marketplaces(
    start_orders: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    bases = {region: await start_orders(region) for region in ("NA", "EU", "FE")}
    account = uuid.uuid4()
    token = issuer[0].mint(account_id=account)
    home = {"NA": US, "EU": DE, "FE": JP}
    placed: dict[str, str] = {}
    async with TopicWatcher(kafka_bootstrap, [ORDERS]) as watcher, httpx.AsyncClient() as http:
        for region, base in bases.items():
            for other, marketplace in home.items():
                body = order(marketplace=marketplace, amount="1500" if marketplace == JP else "15.00")
                response = await http.post(f"{base}/orders/v0/orders", json=body, headers=auth(token))
                if other == region:
                    assert response.status_code == 200, response.text
                    placed[body["AmazonOrderId"]] = region
                else:
                    assert response.status_code == 422, response.text
                    assert response.json()["region"] == other
                    assert f"belongs to the {other} region" in response.json()["detail"]
        seen = await watcher.collect(lambda r: r.key == str(account), count=3, timeout_s=30)
    assert {r.value["amazon_order_id"]: r.headers["ce_source"] for r in seen} == {
        oid: f"/services/orders-{region.lower()}" for oid, region in placed.items()
    }
    assert {r.value["amazon_order_id"]: r.value["region"] for r in seen} == placed


async def test_events_are_keyed_by_account_with_cloudevents_headers_and_match_their_schemas(
    start_orders: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    base, account, token = await new_seller(start_orders, issuer)
    placed = order(status="Unshipped", amount="42.50")
    oid = placed["AmazonOrderId"]
    counts = {
        **placed,
        "NumberOfItemsShipped": 1,
        "NumberOfItemsUnshipped": 1,
        "LastUpdateDate": "2026-09-02T10:00:00Z",
    }
    shipped = {**counts, "OrderStatus": "Shipped", "LastUpdateDate": "2026-09-03T10:00:00Z"}
    refund = {"RefundAmount": {"CurrencyCode": "EUR", "Amount": "2.50"}, "RefundedAt": "2026-09-04T10:00:00Z"}
    async with TopicWatcher(kafka_bootstrap, [ORDERS]) as watcher, httpx.AsyncClient(base_url=base) as http:
        for update in (placed, counts, shipped):
            await http.post("/orders/v0/orders", json=update, headers=auth(token))
        await http.post(f"/orders/v0/orders/{oid}/refunds", json=refund, headers=auth(token))
        seen = await watcher.collect(lambda r: r.key == str(account), count=4, timeout_s=30)
    check_stream(
        seen,
        types=[
            "unifiedseller.orders.OrderPlaced.v1",
            "unifiedseller.orders.OrderItemCountsChanged.v1",
            "unifiedseller.orders.OrderStatusChanged.v1",
            "unifiedseller.orders.OrderRefunded.v1",
        ],
        topic=ORDERS,
        key=str(account),
        source="/services/orders-eu",
        subject=f"order:{account}:{oid}",
    )
    for record in seen:
        assert record.value["account_id"] == str(account)
    assert seen[0].value["order_total"] == {"currency_code": "EUR", "amount": "42.50"}
    assert seen[0].value["number_of_items"] == 2
    assert (seen[1].value["number_of_items_shipped"], seen[1].value["number_of_items_unshipped"]) == (1, 1)
    assert seen[3].value["amount"] == {"currency_code": "EUR", "amount": "2.50"}
