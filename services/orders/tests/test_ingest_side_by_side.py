"""Batches of one account sent at the same time, overlapping in their orders: no global lock queues them,
the row locks and the event store's unique (stream, version) decide, and each event is published once. Many
sellers posting at once share units of work (group commit): each gets its own answers, a seller whose
marketplace is not open is refused alone, and every order is published once under its own account."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx

from unified_shared.contracts.regions import ParticipationOpened
from unified_shared.testing import TestIssuer, TopicWatcher, publish_events
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


async def unit_metrics(http: httpx.AsyncClient) -> dict[str, float]:
    """The instance's ingest units so far and how many shared ones were split after failing (its /metrics)."""
    found = {"units": 0.0, "split": 0.0}
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith('group_commit_unit_items_count{group="orders_ingest"}'):
            found["units"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith('group_commit_units_split_total{group="orders_ingest"}'):
            found["split"] = float(line.rsplit(" ", 1)[1])
    return found


async def test_many_sellers_at_once_each_get_their_own_answers_and_events(
    start_orders: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    # one unit at a time: the requests arriving while it runs go together in the next (of many sellers)
    base = await start_orders("EU", participation_required=True, participation_settle_s=0.2, ingest_parallel=1)
    sellers = [uuid.uuid4() for _ in range(5)]
    never_opened = uuid.uuid4()
    tokens = {a: issuer[0].mint(account_id=a) for a in [*sellers, never_opened]}
    at = dt.datetime(2026, 9, 1, 8, tzinfo=dt.UTC)
    await publish_events(
        kafka_bootstrap, *(ParticipationOpened(account_id=a, marketplace_id=DE, at=at) for a in sellers)
    )
    sent = {a: [order(marketplace=DE) for _ in range(4)] for a in sellers}
    shared = order(marketplace=DE)  # the same order ID for every seller: five different orders
    async with TopicWatcher(kafka_bootstrap, [ORDERS]) as watcher, httpx.AsyncClient(base_url=base) as http:
        posts = [(a, [o]) for a in sellers for o in sent[a]] + [(a, [shared, sent[a][0]]) for a in sellers]
        before = await unit_metrics(http)
        responses = await asyncio.gather(
            *(http.post("/orders/v0/orders", json={"Orders": b}, headers=auth(tokens[a])) for a, b in posts),
            http.post("/orders/v0/orders", json=order(marketplace=DE), headers=auth(tokens[never_opened])),
        )
        *answers, refused = responses
        after = await unit_metrics(http)
        # they shared units, and no shared unit failed (one that did would be split: right, but request by request)
        assert after["units"] - before["units"] < len(posts) + 1 and after["split"] == before["split"]
        assert [r.status_code for r in answers] == [200] * len(posts), [r.text for r in answers]
        assert [[res["AmazonOrderId"] for res in r.json()["results"]] for r in answers] == [
            [o["AmazonOrderId"] for o in b] for _, b in posts
        ]  # each request answered with its own orders, in its order
        outcomes = Counter(
            (a, res["AmazonOrderId"], res["outcome"])
            for (a, _), r in zip(posts, answers)
            for res in r.json()["results"]
        )
        for a in sellers:  # sent twice (in two requests racing): placed by one, unchanged for the other
            assert outcomes[(a, sent[a][0]["AmazonOrderId"], "placed")] == 1
            assert outcomes[(a, sent[a][0]["AmazonOrderId"], "unchanged")] == 1
            assert outcomes[(a, shared["AmazonOrderId"], "placed")] == 1
            assert all(outcomes[(a, o["AmazonOrderId"], "placed")] == 1 for o in sent[a])
        assert refused.status_code == 422 and refused.json()["field"] == "MarketplaceId", refused.text
        for a in sellers:  # each seller reads its own orders back (stored under its account)
            for o in [*sent[a], shared]:
                got = await http.get(f"/orders/v0/orders/{o['AmazonOrderId']}", headers=auth(tokens[a]))
                assert got.status_code == 200, got.text
        for a in sellers:  # what each seller's stream carries: its own orders, once each
            marker = order_id()
            await http.post("/orders/v0/orders", json=order(marker), headers=auth(tokens[a]))
            seen = await events_until_marker(watcher, a, marker)
            assert Counter(r.value["amazon_order_id"] for r in seen) == Counter(
                {o["AmazonOrderId"]: 1 for o in [*sent[a], shared]}
            )
            assert {r.value["account_id"] for r in seen} == {str(a)}


async def test_each_order_event_continues_its_own_requests_trace_in_a_shared_unit(
    start_orders: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    base, account, token = await new_seller(start_orders, issuer, ingest_parallel=1)
    traces = {order_id(): uuid.uuid4().hex for _ in range(10)}  # order ID -> the trace its request belongs to
    async with TopicWatcher(kafka_bootstrap, [ORDERS]) as watcher, httpx.AsyncClient(base_url=base) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/orders/v0/orders",
                    json=order(oid),
                    headers={**auth(token), "traceparent": f"00-{trace}-{uuid.uuid4().hex[:16]}-01"},
                )
                for oid, trace in traces.items()
            )
        )
        assert [r.status_code for r in responses] == [200] * len(traces)
        marker = order_id()
        await http.post("/orders/v0/orders", json=order(marker), headers=auth(token))
        seen = await events_until_marker(watcher, account, marker)
    carried = {r.value["amazon_order_id"]: r.headers["ce_traceparent"].split("-")[1] for r in seen}
    assert carried == traces
