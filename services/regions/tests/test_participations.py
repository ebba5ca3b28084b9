"""Participations against the real broker and database: events, 409s, permissions, concurrency, SP-API."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from unified_regions.testing import Running, register_directly, running_service
from unified_shared.contracts.identity import AccountRegistered
from unified_shared.db import SHARED_COMPONENT, apply_migrations, connect, create_pool
from unified_shared.eventstore import APPEND_LOCK, append
from unified_shared.kafka import make_producer
from unified_shared.outbox import OutboxRelay
from unified_shared.testing import TopicWatcher, eventually
from unified_shared.topics import REGIONS_SUBSCRIPTIONS

US, DE, UK = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1F83G8C2ARO7P"
SEPT = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)


def at(days: int) -> str:
    return (SEPT + dt.timedelta(days=days)).isoformat()


@pytest.fixture
async def svc(fresh_db: str, kafka_bootstrap: str) -> AsyncIterator[Running]:
    async with running_service(fresh_db, kafka_bootstrap) as running:
        yield running


def of_account(account: uuid.UUID):  # type: ignore[no-untyped-def]
    return lambda r: r.key == str(account)


async def stream_rows(dsn: str, account: uuid.UUID) -> list[tuple[str, str, int]]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT stream_id, event_type, version FROM event_store WHERE partition_key = $1 ORDER BY position",
            str(account),
        )
        return [(r["stream_id"], r["event_type"].split(".")[2], r["version"]) for r in rows]
    finally:
        await conn.close()


async def test_registered_account_home_participation_appears_without_calling_regions(
    svc: Running, make_db, kafka_bootstrap: str
) -> None:
    # An identity-like publisher: its own scratch database, the shared event store and outbox relay.
    scratch = await make_db()
    pool = await create_pool(scratch)
    async with pool.acquire() as conn:
        await apply_migrations(conn, [SHARED_COMPONENT])
    producer = make_producer(kafka_bootstrap, client_id="identity-stand-in")
    await producer.start()
    account = uuid.uuid4()
    registered_at = dt.datetime(2026, 9, 1, 9, 30, tzinfo=dt.UTC)
    try:
        async with TopicWatcher(kafka_bootstrap, [REGIONS_SUBSCRIPTIONS]) as watcher:
            async with pool.acquire() as conn, conn.transaction():
                await append(
                    conn,
                    f"account-{account}",
                    0,
                    [
                        AccountRegistered(
                            account_id=account,
                            legal_name="Borderless Goods Ltd",
                            home_marketplace_id=UK,
                            owner_user_id=uuid.uuid4(),
                            owner_email="owner@borderless.test",
                            registered_at=registered_at,
                        )
                    ],
                )
            relay = OutboxRelay(pool, producer, source="/services/identity", name="identity-stand-in")
            assert await relay.publish_once() == 1
            async with svc.client(svc.token(account, role="member")) as client:

                async def participations() -> Any:
                    body = (await client.get(f"/v1/accounts/{account}/participations")).json()
                    return body if body.get("participations") else None

                # However slow the machine: wait for the condition, with a deadline, never for a fixed time.
                listed = await eventually(participations, "the home participation in regions' API", timeout_s=120)
                sp = (await client.get("/sellers/v1/marketplaceParticipations")).json()
            # Committed before it is published: the event reaches the topic after the API shows it.
            seen = await watcher.collect(of_account(account), count=1, timeout_s=120)
        assert [r.envelope.type for r in seen] == ["unifiedseller.regions.ParticipationOpened.v1"]
        assert seen[0].value["marketplace_id"] == UK
        assert dt.datetime.fromisoformat(seen[0].value["at"]) == registered_at
        # Exactly one: the relay publishes exactly the event store (no waiting to see whether more arrive).
        assert await stream_rows(svc.dsn, account) == [(f"participation-{account}-{UK}", "ParticipationOpened", 1)]
        assert [(p["marketplace_id"], p["state"]) for p in listed["participations"]] == [(UK, "open")]
        assert dt.datetime.fromisoformat(listed["participations"][0]["last_changed_at"]) == registered_at
        assert sp["payload"][0]["marketplace"]["countryCode"] == "GB"
        assert sp["payload"][0]["storeName"] == "Borderless Goods Ltd"
    finally:
        await producer.stop()
        await pool.close()


# (action, days after registration, expected event or None for 409)
SCRIPT: list[tuple[str, str, int, str | None]] = [
    ("DE", "open", 1, "ParticipationOpened"),
    ("DE", "open", 2, None),  # already open
    ("DE", "activate-listings", 2, None),  # no subscription
    ("DE", "reinstate", 2, None),  # not suspended
    ("DE", "start-subscription", 2, "SubscriptionStarted"),
    ("DE", "start-subscription", 3, None),  # already active
    ("DE", "activate-listings", 3, "ListingsActivated"),
    ("DE", "end-subscription", 4, None),  # listings still active
    ("DE", "close", 4, None),  # subscription still active
    ("DE", "suspend", 5, "ParticipationSuspended"),
    ("DE", "start-subscription", 5, None),  # not open
    ("DE", "activate-listings", 5, None),  # not open
    ("DE", "suspend", 6, None),  # already suspended
    ("DE", "reinstate", 6, "ParticipationReinstated"),
    ("DE", "deactivate-listings", 7, "ListingsDeactivated"),
    ("DE", "deactivate-listings", 7, None),  # not active
    ("DE", "end-subscription", 8, "SubscriptionEnded"),
    ("DE", "end-subscription", 8, None),  # nothing to end
    ("DE", "close", 9, "ParticipationClosed"),
    ("DE", "suspend", 9, None),  # closed
    ("DE", "reinstate", 9, None),  # closed
    ("DE", "start-subscription", 9, None),  # closed
    ("DE", "open", 10, "ParticipationOpened"),  # re-open after closing
    ("DE", "suspend", 3, None),  # effective time before the last change
]


async def test_every_valid_transition_publishes_one_event_and_every_invalid_one_gets_409(
    svc: Running, kafka_bootstrap: str
) -> None:
    account = uuid.uuid4()
    await register_directly(svc.dsn, account, home=US)
    expected = ["ParticipationOpened"]  # the home marketplace
    async with TopicWatcher(kafka_bootstrap, [REGIONS_SUBSCRIPTIONS], from_beginning=False) as watcher:
        async with svc.client(svc.token(account, role="admin")) as client:
            for market, action, day, event in SCRIPT:
                if action == "open":
                    r = await client.post(
                        f"/v1/accounts/{account}/participations", json={"marketplace": market, "at": at(day)}
                    )
                else:
                    r = await client.post(
                        f"/v1/accounts/{account}/participations/{market}/{action}", json={"at": at(day)}
                    )
                if event is None:
                    assert r.status_code == 409, (action, day, r.text)
                    assert r.headers["content-type"].startswith("application/problem+json")
                    assert r.json()["detail"]
                else:
                    assert r.status_code in (200, 201), (action, day, r.text)
                    body = r.json()
                    assert body["event"] == event and body["marketplace_id"] == DE
                    assert dt.datetime.fromisoformat(body["last_changed_at"]) == SEPT + dt.timedelta(days=day)
                    expected.append(event)
        # The home (US) opening may reach Kafka before or after the watcher starts: count DE only there.
        seen = await watcher.collect(
            lambda r: r.key == str(account) and r.value["marketplace_id"] == DE,
            count=len(expected) - 1,
            timeout_s=120,
        )
    published = [r.envelope.type.split(".")[2] for r in sorted(seen, key=lambda r: r.offset)]
    assert published == expected[1:]
    rows = await stream_rows(svc.dsn, account)
    assert [t for _, t, _ in rows] == expected
    de_rows = [v for s, _, v in rows if s == f"participation-{account}-{DE}"]
    assert de_rows == list(range(1, len(de_rows) + 1))


async def test_time_order_is_enforced_with_a_reason(svc: Running) -> None:
    account = uuid.uuid4()
    await register_directly(svc.dsn, account, home=US, at=SEPT)
    async with svc.client(svc.token(account)) as client:
        r = await client.post(f"/v1/accounts/{account}/participations/US/suspend", json={"at": at(-1)})
        assert r.status_code == 409
        assert r.json()["code"] == "effective_time_before_last_change"
        assert "earlier than the last change" in r.json()["detail"]
        # backdated but after the last change is fine (the demo replays September 2026)
        r = await client.post(f"/v1/accounts/{account}/participations/US/start-subscription", json={"at": at(2)})
        assert r.status_code == 200, r.text
        assert r.json()["subscription_active"] is True and r.json()["plan"] == "Professional"
    assert [t for _, t, _ in await stream_rows(svc.dsn, account)] == ["ParticipationOpened", "SubscriptionStarted"]


async def test_permissions_unknown_accounts_and_marketplaces(svc: Running) -> None:
    account, stranger = uuid.uuid4(), uuid.uuid4()
    await register_directly(svc.dsn, account, home=US)
    url = f"/v1/accounts/{account}/participations"
    async with svc.client(svc.token(account, role="member")) as member:
        assert (await member.post(url, json={"marketplace": "DE"})).status_code == 403
        assert (await member.post(f"{url}/US/start-subscription", json={})).status_code == 403
        assert (await member.get(url)).status_code == 200
    async with svc.client(svc.token(account, role="admin", marketplaces=[US])) as scoped:
        assert (await scoped.post(url, json={"marketplace": "DE"})).status_code == 403
        assert (await scoped.post(f"{url}/US/start-subscription")).status_code == 200
    async with svc.client(svc.token(stranger)) as other:
        # another account's path: 404, never confirming it exists
        assert (await other.get(url)).status_code == 404
        assert (await other.post(url, json={"marketplace": "DE"})).status_code == 404
        # its own account, unknown to regions (never registered)
        own = f"/v1/accounts/{stranger}/participations"
        assert (await other.post(own, json={"marketplace": "DE"})).status_code == 404
        assert (await other.post(f"/v1/accounts/{stranger}/participations/US/suspend")).status_code == 404
    async with svc.client(svc.token(account)) as owner:
        r = await owner.post(url, json={"marketplace": "XX"})
        assert r.status_code == 422 and r.json()["field"] == "marketplace"
        assert (await owner.post(f"{url}/XX/suspend")).status_code == 404
        assert (await owner.post(f"{url}/US/explode")).status_code == 404
        r = await owner.post(url, json={"marketplace": "UK"})  # UK accepted on input, GB on output
        assert r.status_code == 201 and r.json()["country_code"] == "GB" and r.json()["marketplace_id"] == UK
    async with svc.client() as anonymous:
        assert (await anonymous.get(url)).status_code == 401
        assert (await anonymous.get("/v1/marketplaces")).status_code == 200
    assert [t for _, t, _ in await stream_rows(svc.dsn, account)] == [
        "ParticipationOpened",
        "SubscriptionStarted",
        "ParticipationOpened",
    ]


async def _hold_append_lock_until_waiters(dsn: str, waiters: int):  # type: ignore[no-untyped-def]
    """Hold the event store's append lock so that both commands load the same version before either
    appends: the race is then certain, not a matter of timing."""
    holder = await connect(dsn)
    await holder.execute("SELECT pg_advisory_lock($1)", APPEND_LOCK)

    async def release_when_blocked() -> None:
        try:
            for _ in range(600):
                blocked = await holder.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1",
                    APPEND_LOCK,
                )
                if blocked >= waiters:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the commands never reached the append")
        finally:
            await holder.execute("SELECT pg_advisory_unlock($1)", APPEND_LOCK)
            await holder.close()

    return asyncio.create_task(release_when_blocked())


async def test_concurrent_same_command_one_wins_the_other_gets_409(svc: Running) -> None:
    account = uuid.uuid4()
    await register_directly(svc.dsn, account, home=US)
    url = f"/v1/accounts/{account}/participations/US/start-subscription"
    async with svc.client(svc.token(account)) as client:
        releaser = await _hold_append_lock_until_waiters(svc.dsn, 2)
        first, second = await asyncio.gather(client.post(url, json={"at": at(1)}), client.post(url, json={"at": at(1)}))
        await releaser
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    loser = first if first.status_code == 409 else second
    assert "already active" in loser.json()["detail"]  # decided again on the winner's state
    assert [t for _, t, _ in await stream_rows(svc.dsn, account)] == ["ParticipationOpened", "SubscriptionStarted"]


async def test_concurrent_compatible_commands_both_apply_after_a_retry(svc: Running) -> None:
    account = uuid.uuid4()
    await register_directly(svc.dsn, account, home=US)
    base = f"/v1/accounts/{account}/participations/US"
    async with svc.client(svc.token(account)) as client:
        for action, day in (("start-subscription", 1), ("activate-listings", 2)):
            assert (await client.post(f"{base}/{action}", json={"at": at(day)})).status_code == 200
        releaser = await _hold_append_lock_until_waiters(svc.dsn, 2)
        a, b = await asyncio.gather(
            client.post(f"{base}/deactivate-listings", json={"at": at(3)}),
            client.post(f"{base}/suspend", json={"at": at(3), "reason": "policy review"}),
        )
        await releaser
        assert (a.status_code, b.status_code) == (200, 200), (a.text, b.text)
        final = (await client.get(f"/v1/accounts/{account}/participations")).json()["participations"][0]
    assert final["state"] == "suspended" and final["listings_active"] is False
    assert final["suspension_reason"] == "policy review" and final["version"] == 5
    rows = await stream_rows(svc.dsn, account)
    assert sorted(t for _, t, _ in rows[3:]) == ["ListingsDeactivated", "ParticipationSuspended"]
    assert [v for _, _, v in rows] == [1, 2, 3, 4, 5]


# -- Amazon Sellers API: getMarketplaceParticipations -----------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Marketplace(_Strict):
    id: str
    name: str
    countryCode: str
    defaultCurrencyCode: str
    defaultLanguageCode: str
    domainName: str


class Participation(_Strict):
    isParticipating: bool
    hasSuspendedListings: bool


class MarketplaceParticipation(_Strict):
    marketplace: Marketplace
    participation: Participation
    storeName: str


class GetMarketplaceParticipationsResponse(_Strict):
    payload: list[MarketplaceParticipation]


async def test_sp_api_marketplace_participations_shape(svc: Running) -> None:
    account = uuid.uuid4()
    await register_directly(svc.dsn, account, home=US, name="Acme Trading Inc")
    owner = svc.token(account)
    async with svc.client(owner) as client:
        for market in ("UK", "JP"):
            assert (
                await client.post(f"/v1/accounts/{account}/participations", json={"marketplace": market, "at": at(1)})
            ).status_code == 201
        for action in ("start-subscription", "activate-listings"):
            r = await client.post(f"/v1/accounts/{account}/participations/US/{action}", json={"at": at(2)})
            assert r.is_success, r.text
        assert (await client.post(f"/v1/accounts/{account}/participations/JP/suspend", json={"at": at(2)})).is_success
        response = await client.get("/sellers/v1/marketplaceParticipations")
    assert response.status_code == 200
    parsed = GetMarketplaceParticipationsResponse.model_validate_json(response.text)
    by_id = {p.marketplace.id: p for p in parsed.payload}
    assert set(by_id) == {US, UK, "A1VC38T7YXB528"}
    uk = by_id[UK].marketplace
    assert (uk.countryCode, uk.defaultCurrencyCode, uk.domainName, uk.name) == (
        "GB",
        "GBP",
        "www.amazon.co.uk",
        "Amazon.co.uk",
    )
    assert by_id[US].participation == Participation(isParticipating=True, hasSuspendedListings=False)
    assert by_id[UK].participation == Participation(isParticipating=True, hasSuspendedListings=True)  # no listings
    assert by_id["A1VC38T7YXB528"].participation.hasSuspendedListings is True
    assert {p.storeName for p in parsed.payload} == {"Acme Trading Inc"}
    # a member whose scope is one marketplace sees only that one
    async with svc.client(svc.token(account, role="member", marketplaces=[UK])) as member:
        scoped = GetMarketplaceParticipationsResponse.model_validate_json(
            (await member.get("/sellers/v1/marketplaceParticipations")).text
        )
    assert [p.marketplace.id for p in scoped.payload] == [UK]


async def test_marketplace_catalog(svc: Running) -> None:
    async with svc.client() as client:
        catalog = (await client.get("/v1/marketplaces")).json()["marketplaces"]
        uk = (await client.get("/v1/marketplaces/UK")).json()
        assert (await client.get("/v1/marketplaces/XX")).status_code == 404
    assert len(catalog) == 23
    assert {m["region"] for m in catalog} == {"NA", "EU", "FE"}
    assert uk == next(m for m in catalog if m["code"] == "UK")
    assert (uk["marketplace_id"], uk["country_code"], uk["currency"]) == (UK, "GB", "GBP")
