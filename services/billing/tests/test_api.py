"""The HTTP API on a real socket: who may see billing, invoices, one invoice, CSV, preview, holds, closing."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from unified_billing.domain import Period, invoice_id
from unified_shared.testing import TestIssuer

from .support import (
    DE,
    JP,
    OPERATOR_TOKEN,
    US,
    Clock,
    billing_from_now,
    feed,
    migrated_pool,
    rates,
    registered,
    selling,
)


async def test_billing_api(fresh_db: str, kafka_bootstrap: str) -> None:
    account, other = uuid.uuid4(), uuid.uuid4()
    pool = await migrated_pool(fresh_db)
    try:
        await feed(
            pool,
            registered(account, US),
            *selling(account, US, "2026-08-03T09:00"),
            *selling(account, DE, "2026-08-10T09:00"),
            *selling(account, JP, "2026-08-20T09:00"),
            rates("2026-09-30"),
            rates("2026-10-20"),  # the open period's preview uses the latest rates so far
            registered(other, DE),
            *selling(other, DE, "2026-09-03T09:00"),
        )
    finally:
        await pool.close()
    issuer = TestIssuer()
    clock = Clock("2026-10-21T12:00:00Z")
    async with (
        issuer.serve() as jwks_url,
        billing_from_now(fresh_db, kafka_bootstrap, issuer, jwks_url, clock=clock, name="api") as svc,
    ):
        owner = svc.owner(account)
        base = f"/v1/accounts/{account}"
        async with svc.client(owner) as client:
            # An open period cannot be closed; the owner closes its own account's ended period.
            response = await client.post("/v1/billing/periods/2026-10/close")
            assert response.status_code == 409 and response.headers["content-type"] == "application/problem+json"
            response = await client.post("/v1/billing/periods/2026-09/close", json={"account_id": str(other)})
            assert response.status_code == 404
            response = await client.post("/v1/billing/periods/2026-09/close")
            assert response.status_code == 200, response.text
            # September, then August: never closed, the account's first period (home US only, 39.99 USD).
            first, result = sorted(response.json()["results"], key=lambda r: r["period"])
            assert (first["account_id"], first["period"]) == (str(account), "2026-08")
            assert [(i["currency"], i["total"]) for i in first["issued"]] == [("USD", "39.99")]
            assert (result["account_id"], result["period"]) == (str(account), "2026-09")
            assert sorted((i["currency"], i["total"]) for i in result["issued"]) == [
                ("EUR", "11.79"),
                ("JPY", "1482"),
                ("USD", "12.09"),
            ]

            listing = (await client.get(f"{base}/invoices", params={"period": "2026-09", "currency": "JPY"})).json()
            assert [i["total"] for i in listing["invoices"]] == ["1482"] and listing["credit_notes"] == []
            eur_id = invoice_id(account, Period(2026, 9), "EUR")
            one = (await client.get(f"{base}/invoices/{eur_id}")).json()
            (line,) = one["lines"]
            assert (line["marketplace_id"], line["fee"], line["amount"], line["discount"]) == (
                DE,
                "39.00",
                "11.79",
                "27.21",
            )
            assert line["ratio"].startswith("0.302454") and line["fx_rate_date"] == "2026-09-30"
            assert line["fx_rate"] == "1" and line["fx_rate_usd"] == "1.2320000000"
            assert (await client.get(f"{base}/invoices/INV-nope")).status_code == 404

            exported = await client.get(f"{base}/invoices.csv", params={"period": "2026-09"})
            assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(exported.text)))
            assert sorted((r["marketplace_code"], r["currency"], r["amount"]) for r in rows) == [
                ("DE", "EUR", "11.79"),
                ("JP", "JPY", "1482"),
                ("US", "USD", "12.09"),
            ]

            preview: dict[str, Any] = (await client.get(f"{base}/billing/preview")).json()
            assert (preview["period"], preview["final"], preview["status"]) == ("2026-10", False, "preview")
            assert {i["currency"] for i in preview["invoices"]} == {"USD", "EUR", "JPY"}
            assert (await client.get(f"{base}/invoices", params={"period": "2026-10"})).json()["invoices"] == []

        # Nobody but the owner with the billing permission sees billing.
        for token in (
            svc.owner(account, role="admin"),
            svc.owner(account, role="member", permissions=["orders", "reports"]),
            svc.owner(account, permissions=["orders", "messages", "reports"]),
        ):
            async with svc.client(token) as client:
                for path in (
                    "/invoices",
                    f"/invoices/{eur_id}",
                    "/invoices.csv",
                    "/billing/preview",
                    "/billing/periods",
                ):
                    assert (await client.get(base + path)).status_code == 403, path
                assert (await client.post("/v1/billing/periods/2026-09/close")).status_code == 403
        async with svc.client(svc.owner(other)) as client:
            assert (await client.get(f"{base}/invoices")).status_code == 404
        async with svc.client() as client:
            assert (await client.get(f"{base}/invoices")).status_code == 401
            assert (await client.get("/v1/billing/holds")).status_code == 403

        # The operator closes October for every account: both need October 30's rates (a Friday; only the 20th's
        # are in), so both are held, with the reason in the API and in the metrics. The other account's
        # September (its first period, never closed) is closed by the same run.
        clock.set("2026-11-01T06:00:00Z")
        async with svc.client(OPERATOR_TOKEN) as client:
            response = await client.post("/v1/billing/periods/2026-10/close")
            assert response.status_code == 200, response.text
            ours = {str(account), str(other)}  # the suite's broker also carries other tests' accounts
            statuses = {
                (r["account_id"], r["period"]): r["status"]
                for r in response.json()["results"]
                if r["account_id"] in ours
            }
            assert statuses == {
                (str(account), "2026-10"): "held",
                (str(other), "2026-10"): "held",
                (str(other), "2026-09"): "closed",
            }
            all_holds = (await client.get("/v1/billing/holds")).json()["holds"]
            holds = [h for h in all_holds if h["account_id"] in ours]
            assert {h["account_id"] for h in holds} == ours
            assert all("2026-10-31" in h["reason"] for h in holds)
            metrics = (await client.get("/metrics")).text
            assert f"billing_held_periods {float(len(all_holds))}" in metrics
        async with svc.client(owner) as client:
            periods = (await client.get(f"{base}/billing/periods")).json()["periods"]
            assert [(p["period"], p["status"]) for p in periods] == [
                ("2026-08", "closed"),
                ("2026-09", "closed"),
                ("2026-10", "held"),
            ]
            assert "not published yet" in periods[2]["reason"]
