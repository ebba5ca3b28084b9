"""Batches of one account sent at the same time, overlapping in their orders: no global lock queues them,
the row locks and the event store's unique (stream, version) decide, and each event is published once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx

from unified_shared.testing import TestIssuer, TopicWatcher
from unified_shared.testing_services import new_seller
from unified_shared.topics import ORDERS

from .support import DE, FR, auth, events_until_marker, order, order_id

Start = Callable[[str], Awaitable[str]]
Issuer = tuple[TestIssuer, str]


async def test_overlapping_batches_at_once_place_each_order_once(
    start_orders: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    base, account, token = await new_seller(start_orders, issuer)
    shared = [order(marketplace=DE) for _ in range(20)]
    batches = [[*shared[i:], *shared[:i], order(marketplace=FR)] for i in range(0, 20, 4)]  # different orders
    async with TopicWatcher(kafka_bootstrap, [ORDERS]) as watcher, httpx.AsyncClient(base_url=base) as http:
        responses = await asyncio.gather(
            *(http.post("/orders/v0/orders", json={"Orders": b}, headers=auth(token)) for b in batches)
        )
        assert [r.status_code for r in responses] == [200] * len(batches), [r.text for r in responses]
        outcomes = Counter((res["AmazonOrderId"], res["outcome"]) for r in responses for res in r.json()["results"])
        for o in shared:  # placed by exactly one batch, unchanged for the others
            assert outcomes[(o["AmazonOrderId"], "placed")] == 1
            assert outcomes[(o["AmazonOrderId"], "unchanged")] == len(batches) - 1
        marker = order_id()
        await http.post("/orders/v0/orders", json=order(marker), headers=auth(token))
        seen = await events_until_marker(watcher, account, marker)
    placed = Counter(r.value["amazon_order_id"] for r in seen)
    assert placed == Counter({o["AmazonOrderId"]: 1 for o in shared} | {b[-1]["AmazonOrderId"]: 1 for b in batches})
