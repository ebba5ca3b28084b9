"""The buyer-messages service against the real Kafka and PostgreSQL: idempotency, thread state and
deadline across a reply and a mark, plain-text bodies, region and scope, and the published events."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from unified_shared.clock import FixedClock
from unified_shared.testing import TestIssuer, TopicWatcher
from unified_shared.testing_services import check_stream, new_seller
from unified_shared.topics import BUYER_MESSAGES

from .support import DE, FR, UK, US, auth, events_until_marker, message

Start = Callable[..., Awaitable[str]]
Issuer = tuple[TestIssuer, str]
THREADS = "/messaging/v1/threads"


def kinds(records: list[Any]) -> list[tuple[str, str]]:
    return [(r.headers["ce_type"].split(".")[2], r.value.get("message_id") or r.value["at"]) for r in records]


async def test_the_same_message_reply_and_mark_twice_publish_once(
    start_messages: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    base, account, token = await new_seller(start_messages, issuer)
    explicit = message("2026-09-01T10:00:00Z", message_id="msg-1")
    derived = message("2026-09-01T11:00:00Z", body="And the invoice?")
    reply = {"body": "On its way.", "replied_at": "2026-09-01T12:00:00Z", "message_id": "reply-1"}
    later = message("2026-09-01T13:00:00Z", body="Thanks!", message_id="msg-3")
    mark = {"at": "2026-09-01T13:30:00Z"}
    async with TopicWatcher(kafka_bootstrap, [BUYER_MESSAGES]) as watcher, httpx.AsyncClient(base_url=base) as http:
        for path, body in (
            ("buyer-messages", explicit),
            ("buyer-messages", derived),
            ("replies", reply),
            ("buyer-messages", later),
            ("no-response-needed", mark),
        ):
            first = await http.post(f"{THREADS}/t-1/{path}", json=body, headers=auth(token))
            assert first.status_code in (200, 201), first.text
            assert first.json()["outcome"] != "unchanged"
            second = await http.post(f"{THREADS}/t-1/{path}", json=body, headers=auth(token))
            assert second.status_code == 200, second.text
            assert (second.json()["outcome"], second.json()["id"]) == ("unchanged", first.json()["id"])
        conflict = await http.post(
            f"{THREADS}/t-1/buyer-messages", json={**explicit, "body": "edited"}, headers=auth(token)
        )
        assert (conflict.status_code, conflict.json()["field"]) == (409, "message_id")
        thread = (await http.get(f"{THREADS}/t-1", headers=auth(token))).json()
        assert (thread["buyer_messages"], thread["replies"], len(thread["entries"])) == (3, 1, 5)
        await http.post(f"{THREADS}/marker/buyer-messages", json=message("2026-09-02T00:00:00Z"), headers=auth(token))
        seen = await events_until_marker(watcher, account, "marker")
    assert [k for k, _ in kinds(seen)] == [
        "BuyerMessageReceived",
        "BuyerMessageReceived",
        "SellerReplied",
        "BuyerMessageReceived",
        "MarkedNoResponseNeeded",
    ], "a repeated command published again"


async def test_thread_state_and_deadline_across_a_reply_and_a_mark(
    start_messages: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    clock = FixedClock("2026-09-04T18:00:00Z")
    base, account, token = await new_seller(start_messages, issuer, "EU", clock=clock)

    async def listed(state: str) -> dict[str, dict[str, Any]]:
        response = await http.get(THREADS, params={"state": state}, headers=auth(token))
        assert response.status_code == 200, response.text
        return {t["thread_id"]: t for t in response.json()["threads"]}

    async with TopicWatcher(kafka_bootstrap, [BUYER_MESSAGES]) as watcher, httpx.AsyncClient(base_url=base) as http:
        # Friday 18:00 and 20:00: awaiting since the first unanswered one; 24 h of calendar time.
        await http.post(f"{THREADS}/t-2/buyer-messages", json=message("2026-09-04T18:00:00Z"), headers=auth(token))
        await http.post(
            f"{THREADS}/t-2/buyer-messages", json=message("2026-09-04T20:00:00Z", body="Hello?"), headers=auth(token)
        )
        clock.set("2026-09-05T10:00:00Z")
        awaiting = (await listed("awaiting_reply"))["t-2"]
        assert awaiting["awaiting_since"] == "2026-09-04T18:00:00Z"
        assert awaiting["reply_deadline"] == "2026-09-05T18:00:00Z"
        assert (awaiting["is_overdue"], awaiting["due_within_4h"]) == (False, False)
        clock.set("2026-09-05T15:00:00Z")
        assert (await listed("awaiting_reply"))["t-2"]["due_within_4h"] is True
        clock.set("2026-09-05T18:00:01Z")
        late = (await listed("awaiting_reply"))["t-2"]
        assert (late["is_overdue"], late["due_within_4h"]) == (True, False)
        as_of = await http.get(THREADS, params={"as_of": "2026-09-05T09:00:00Z"}, headers=auth(token))
        assert as_of.json()["threads"][0]["is_overdue"] is False

        # The reply (default time: the injected clock) ends the wait.
        replied = await http.post(f"{THREADS}/t-2/replies", json={"body": "Sorry, shipped today."}, headers=auth(token))
        assert replied.status_code == 201, replied.text
        assert replied.json()["thread"]["state"] == "replied"
        assert "t-2" not in await listed("awaiting_reply")
        done = (await listed("replied"))["t-2"]
        assert (done["reply_deadline"], done["is_overdue"], done["due_within_4h"]) == (None, False, False)

        # A new buyer message after the reply starts a new wait with its own deadline.
        await http.post(
            f"{THREADS}/t-2/buyer-messages", json=message("2026-09-06T09:30:00Z", body="Got it"), headers=auth(token)
        )
        again = (await listed("awaiting_reply"))["t-2"]
        assert (again["awaiting_since"], again["reply_deadline"]) == ("2026-09-06T09:30:00Z", "2026-09-07T09:30:00Z")

        # "No response needed" ends it without a reply; a second, different mark is refused.
        marked = await http.post(
            f"{THREADS}/t-2/no-response-needed", json={"at": "2026-09-06T10:00:00Z"}, headers=auth(token)
        )
        assert marked.json()["thread"]["state"] == "no_response_needed"
        assert "t-2" in await listed("no_response_needed")
        assert "t-2" not in await listed("awaiting_reply")
        refused = await http.post(
            f"{THREADS}/t-2/no-response-needed", json={"at": "2026-09-06T11:00:00Z"}, headers=auth(token)
        )
        assert refused.status_code == 409
        unknown = await http.post(f"{THREADS}/nope/replies", json={"body": "x"}, headers=auth(token))
        assert unknown.status_code == 404
        await http.post(f"{THREADS}/marker/buyer-messages", json=message("2026-09-07T00:00:00Z"), headers=auth(token))
        seen = await events_until_marker(watcher, account, "marker")
    assert [(r.value["thread_state"], r.value["reply_deadline"]) for r in seen] == [
        ("awaiting_reply", "2026-09-05T18:00:00Z"),
        ("awaiting_reply", "2026-09-05T18:00:00Z"),
        ("replied", None),
        ("awaiting_reply", "2026-09-07T09:30:00Z"),
        ("no_response_needed", None),
    ]
    assert seen[2].value["replied_at"] == "2026-09-05T18:00:01Z"


async def test_bodies_are_plain_text_and_limited(start_messages: Start, issuer: Issuer, kafka_bootstrap: str) -> None:
    base, account, token = await new_seller(start_messages, issuer)
    markup = "<script>alert('x')</script> &amp; <b>bold</b> \"quoted\" \u00e9\n{{ not a template }}"
    longest = "x" * 10_000
    async with TopicWatcher(kafka_bootstrap, [BUYER_MESSAGES]) as watcher, httpx.AsyncClient(base_url=base) as http:
        created = await http.post(
            f"{THREADS}/t-3/buyer-messages",
            json=message("2026-09-01T10:00:00Z", body=markup, subject="<i>Hi</i>"),
            headers=auth(token),
        )
        assert created.status_code == 201, created.text
        await http.post(
            f"{THREADS}/t-3/replies", json={"body": markup, "replied_at": "2026-09-01T11:00:00Z"}, headers=auth(token)
        )
        got = await http.get(f"{THREADS}/t-3", headers=auth(token))
        assert got.headers["content-type"] == "application/json"
        entries = got.json()["entries"]
        assert [e["body"] for e in entries] == [markup, markup]
        assert entries[0]["subject"] == "<i>Hi</i>"
        assert got.json()["subject"] == "<i>Hi</i>"
        ok = await http.post(
            f"{THREADS}/t-4/buyer-messages", json=message("2026-09-01T10:00:00Z", body=longest), headers=auth(token)
        )
        assert ok.status_code == 201
        too_long = await http.post(
            f"{THREADS}/t-5/buyer-messages",
            json=message("2026-09-01T10:00:00Z", body=longest + "y"),
            headers=auth(token),
        )
        assert too_long.status_code == 422
        assert (too_long.json()["field"], too_long.json()["limit"]) == ("body", 10_000)
        empty = await http.post(
            f"{THREADS}/t-5/buyer-messages", json=message("2026-09-01T10:00:00Z", body="  "), headers=auth(token)
        )
        assert (empty.status_code, empty.json()["field"]) == (422, "body")
        long_reply = await http.post(f"{THREADS}/t-3/replies", json={"body": longest + "y"}, headers=auth(token))
        assert (long_reply.status_code, long_reply.json()["field"]) == (422, "body")
        naive = await http.post(
            f"{THREADS}/t-5/buyer-messages", json=message("2026-09-01T10:00:00"), headers=auth(token)
        )
        assert naive.status_code == 422
        bad_order = await http.post(
            f"{THREADS}/t-5/buyer-messages",
            json=message("2026-09-01T10:00:00Z", amazon_order_id="123"),
            headers=auth(token),
        )
        assert (bad_order.status_code, bad_order.json()["field"]) == (422, "amazon_order_id")
        missing = await http.get(f"{THREADS}/t-5", headers=auth(token))
        assert missing.status_code == 404
        await http.post(f"{THREADS}/marker/buyer-messages", json=message("2026-09-02T00:00:00Z"), headers=auth(token))
        seen = await events_until_marker(watcher, account, "marker")
    assert [r.value["thread_id"] for r in seen] == ["t-3", "t-3", "t-4"], "a refused message was published"
    assert [r.value["body"] for r in seen[:2]] == [markup, markup]


async def test_region_scope_and_permissions(start_messages: Start, issuer: Issuer) -> None:
    base, account, owner = await new_seller(start_messages, issuer)
    test_issuer = issuer[0]
    member = test_issuer.mint(account_id=account, role="member", permissions=["messages"], marketplaces=[DE, FR])
    orders_only = test_issuer.mint(account_id=account, role="member", permissions=["orders"], marketplaces="*")
    async with httpx.AsyncClient(base_url=base) as http:
        us = await http.post(
            f"{THREADS}/t-us/buyer-messages", json=message("2026-09-01T10:00:00Z", marketplace=US), headers=auth(owner)
        )
        assert (us.status_code, us.json()["field"], us.json()["region"]) == (422, "marketplace_id", "NA")
        assert "NA instance" in us.json()["detail"]
        uk = message("2026-09-01T10:00:00Z", marketplace=UK)
        assert (await http.post(f"{THREADS}/t-uk/buyer-messages", json=uk, headers=auth(member))).status_code == 403
        assert (await http.post(f"{THREADS}/t-uk/buyer-messages", json=uk, headers=auth(owner))).status_code == 201
        de = message("2026-09-01T10:00:00Z", marketplace=DE)
        assert (await http.post(f"{THREADS}/t-de/buyer-messages", json=de, headers=auth(member))).status_code == 201
        other_marketplace = await http.post(
            f"{THREADS}/t-de/buyer-messages", json={**uk, "body": "switch"}, headers=auth(owner)
        )
        assert (other_marketplace.status_code, other_marketplace.json()["field"]) == (422, "marketplace_id")
        reply = {"body": "hi", "replied_at": "2026-09-01T11:00:00Z"}
        assert (await http.post(f"{THREADS}/t-uk/replies", json=reply, headers=auth(member))).status_code == 403
        mark = {"at": "2026-09-01T11:00:00Z"}
        assert (
            await http.post(f"{THREADS}/t-uk/no-response-needed", json=mark, headers=auth(member))
        ).status_code == 403
        visible = (await http.get(THREADS, headers=auth(member))).json()["threads"]
        assert [t["thread_id"] for t in visible] == ["t-de"]
        assert (await http.get(f"{THREADS}/t-uk", headers=auth(member))).status_code == 404
        assert (await http.get(THREADS, params={"marketplace_id": UK}, headers=auth(member))).status_code == 403
        assert {t["thread_id"] for t in (await http.get(THREADS, headers=auth(owner))).json()["threads"]} == {
            "t-uk",
            "t-de",
        }
        assert (await http.get(THREADS, headers=auth(orders_only))).status_code == 403
        assert (await http.post(f"{THREADS}/t-x/buyer-messages", json=de, headers=auth(orders_only))).status_code == 403
        assert (await http.get(THREADS)).status_code == 401
        stranger = test_issuer.mint(account_id=uuid.uuid4())
        assert (await http.get(THREADS, headers=auth(stranger))).json()["threads"] == []
        bad_state = await http.get(THREADS, params={"state": "open"}, headers=auth(owner))
        assert (bad_state.status_code, bad_state.json()["field"]) == (422, "state")


async def test_thread_list_is_keyset_paginated(start_messages: Start, issuer: Issuer) -> None:
    base = await start_messages("EU")
    token = issuer[0].mint(account_id=uuid.uuid4())
    async with httpx.AsyncClient(base_url=base) as http:
        for hour in range(5):
            body = message(f"2026-09-01T1{hour}:00:00Z")
            assert (
                await http.post(f"{THREADS}/p-{hour}/buyer-messages", json=body, headers=auth(token))
            ).status_code == 201
        for thread in ("p-0", "p-1"):  # two threads marked at the same instant: two distinct marks
            mark = {"at": "2026-09-01T15:00:00Z"}
            marked = await http.post(f"{THREADS}/{thread}/no-response-needed", json=mark, headers=auth(token))
            assert (marked.status_code, marked.json()["outcome"]) == (200, "marked"), marked.text
        params: dict[str, Any] = {"state": "awaiting_reply", "limit": 2}
        pages: list[list[str]] = []
        while True:
            page = (await http.get(THREADS, params=params, headers=auth(token))).json()
            pages.append([t["thread_id"] for t in page["threads"]])
            if "next_token" not in page:
                break
            params = {"next_token": page["next_token"]}
    assert pages == [["p-2", "p-3"], ["p-4"]]  # most urgent deadline first


async def test_events_are_keyed_by_account_with_cloudevents_headers_and_match_their_schemas(
    start_messages: Start, issuer: Issuer, kafka_bootstrap: str
) -> None:
    base = await start_messages("EU")
    account = uuid.uuid4()
    user = uuid.uuid4()
    token = issuer[0].mint(account_id=account, user_id=user)
    async with TopicWatcher(kafka_bootstrap, [BUYER_MESSAGES]) as watcher, httpx.AsyncClient(base_url=base) as http:
        await http.post(
            f"{THREADS}/t-6/buyer-messages",
            json=message("2026-09-01T10:00:00Z", amazon_order_id="302-1234567-1234567", message_id="m-6"),
            headers=auth(token),
        )
        await http.post(
            f"{THREADS}/t-6/replies", json={"body": "ok", "replied_at": "2026-09-01T11:00:00Z"}, headers=auth(token)
        )
        await http.post(
            f"{THREADS}/t-6/buyer-messages", json=message("2026-09-01T12:00:00Z", body="?"), headers=auth(token)
        )
        await http.post(f"{THREADS}/t-6/no-response-needed", json={"at": "2026-09-01T12:30:00Z"}, headers=auth(token))
        seen = await watcher.collect(lambda r: r.key == str(account), count=4, timeout_s=30)
    check_stream(
        seen,
        types=[
            "unifiedseller.messages.BuyerMessageReceived.v1",
            "unifiedseller.messages.SellerReplied.v1",
            "unifiedseller.messages.BuyerMessageReceived.v1",
            "unifiedseller.messages.MarkedNoResponseNeeded.v1",
        ],
        topic=BUYER_MESSAGES,
        key=str(account),
        source="/services/messages-eu",
        subject=f"thread:{account}:t-6",
    )
    for record in seen:
        assert (record.value["account_id"], record.value["marketplace_id"], record.value["region"]) == (
            str(account),
            DE,
            "EU",
        )
    assert seen[0].value["amazon_order_id"] == "302-1234567-1234567"
    assert seen[0].value["message_id"] == "m-6"
    assert seen[1].value["replied_by"] == str(user)
    assert seen[3].value["marked_by"] == str(user)
