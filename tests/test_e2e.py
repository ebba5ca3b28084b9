"""The whole platform, every service its own OS process, driven by the demo's scenario (shorter).

Checks what a seller relies on: the unified overview equals what was ingested (local and USD, per the
documented conversion rule, with ECB rates read here from the file itself); a member scoped to DE and FR
sees only those; invoices follow DESIGN section 7; and killing seller_view and billing (SIGKILL) in the
middle, even while they catch up, loses and doubles nothing.
"""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from collections import Counter, defaultdict
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from unified_demo import expected
from unified_demo.driver import Driver, Operations, ecb_history_file
from unified_demo.endpoints import Endpoints
from unified_demo.scenario import ScenarioConfig, build
from unified_shared import catalog
from unified_shared.money import round_down

from .platform_processes import Platform

pytestmark = pytest.mark.e2e

CAP_USD = Decimal("39.99")
PLAN_FEES = {  # DESIGN section 3, as the fee schedule's first rows
    "US": Decimal("39.99"),
    "CA": Decimal("29.99"),
    "MX": Decimal("600"),
    "UK": Decimal("25.00"),
    "DE": Decimal("39.00"),
    "FR": Decimal("39.00"),
    "JP": Decimal("4900"),
}


def ecb_rates() -> dict[date, dict[str, Decimal]]:
    """The ECB history file read directly (not through regions): units per EUR by day."""
    with zipfile.ZipFile(io.BytesIO(ecb_history_file())) as archive:
        text = archive.read(archive.namelist()[0]).decode()
    days: dict[date, dict[str, Decimal]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        day = date.fromisoformat(row["Date"])
        days[day] = {c.strip(): Decimal(v) for c, v in row.items() if c and c != "Date" and v and v.strip() != "N/A"}
    return days


def rate_on_or_before(rates: dict[date, dict[str, Decimal]], day: date, currency: str) -> Decimal:
    if currency == "EUR":
        return Decimal(1)
    candidates = [d for d in rates if d <= day and currency in rates[d]]
    return rates[max(candidates)][currency]


def usd_per_order(order: dict[str, Any], rates: dict[date, dict[str, Decimal]]) -> Decimal:
    day = date.fromisoformat(str(order["PurchaseDate"])[:10])
    amount = Decimal(str(order["OrderTotal"]["Amount"]))
    currency = str(order["OrderTotal"]["CurrencyCode"])
    usd = amount * rate_on_or_before(rates, day, "USD") / rate_on_or_before(rates, day, currency)
    return usd.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def expected_capped_charges(rates: dict[date, dict[str, Decimal]], last_day: date) -> dict[str, Decimal]:
    """DESIGN section 7 for a later period: S = sum of USD values; each pays F x cap / S, rounded down."""
    usd = rate_on_or_before(rates, last_day, "USD")
    values = {
        code: fee / rate_on_or_before(rates, last_day, catalog.resolve(code).currency) * usd
        for code, fee in PLAN_FEES.items()
    }
    total = sum(values.values(), Decimal(0))
    ratio = CAP_USD / total
    return {code: round_down(fee * ratio, catalog.resolve(code).currency) for code, fee in PLAN_FEES.items()}


@pytest.fixture
def platform(infra: Any, tmp_path: Path) -> Any:
    plat = Platform(infra.kafka, infra.pg_admin_dsn, tmp_path)
    plat.plan()
    plat.create_databases()
    try:
        plat.start_all()
        yield plat
    finally:
        plat.stop_all()
        plat.drop_databases()


def endpoints_for(plat: Platform) -> Endpoints:
    s = plat.services
    return Endpoints(
        identity=s["identity"].url,
        regions=s["regions"].url,
        orders={r: s[f"orders-{r}"].url for r in ("NA", "EU", "FE")},
        messages={r: s[f"messages-{r}"].url for r in ("NA", "EU", "FE")},
        seller_view=s["seller_view"].url,
        billing=s["billing"].url,
        mail_dir=str(plat.workdir / "mail"),
        operator_token=plat.operator_token,
    )


async def test_the_whole_platform_end_to_end(platform: Platform) -> None:
    scenario = build(ScenarioConfig(seed=11, days=61, orders_per_day=8))
    months = expected.periods(scenario)
    assert months == ["2026-09", "2026-10"]
    ep = endpoints_for(platform)
    steps: list[str] = []
    async with httpx.AsyncClient(timeout=60.0) as http:
        driver = Driver(ep, scenario, http, steps.append)
        ops = Operations(ep, scenario, http, steps.append)
        await driver.wait_ready()
        # Billing is down while its inputs (rates, the account, subscriptions) are published ...
        platform.kill("billing")
        await ops.import_fx_rates()
        session = await driver.register_and_sign_in("e2e")
        await driver.open_marketplaces(session)
        await driver.invite_member(session, "e2e")
        platform.start("billing")
        await asyncio.to_thread(platform.wait_ready, ["billing"])
        await asyncio.sleep(1.0)  # ... and crashes again, hard, while it catches up on them.
        platform.kill("billing")
        platform.start("billing")

        # The view is down while the regional facts pile up, then crashes again while catching up.
        platform.kill("seller_view")
        await driver.ingest_orders(session)
        platform.start("seller_view")
        await asyncio.to_thread(platform.wait_ready, ["seller_view", "billing"])
        await asyncio.sleep(1.0)
        platform.kill("seller_view")
        platform.start("seller_view")
        await driver.ingest_messages(session)
        await asyncio.to_thread(platform.wait_ready, ["seller_view"])

        await ops.wait_for_billing_inputs(session, months)
        await ops.close_periods(session, months)
        platform.kill("billing")  # after issuing: a restart and a second close must issue nothing new
        platform.start("billing")
        await asyncio.to_thread(platform.wait_ready, ["billing"])
        again = await http.post(
            f"{ep.billing}/v1/billing/periods/2026-10/close",
            json={"account_id": session.account_id},
            headers=session.owner.auth,
        )
        assert again.status_code == 200, again.text
        assert [d for r in again.json()["results"] for d in r["issued"]] == []

        invoice_count = sum(len(c) for c in expected.invoice_currencies(scenario).values())
        await ops.wait_for_view(session, len(scenario.final_orders()), invoice_count)
        base = f"{ep.seller_view}/v1/accounts/{session.account_id}"
        overview = (await http.get(f"{base}/overview", params={"currency": "USD"}, headers=session.owner.auth)).json()
        member_overview = (
            await http.get(f"{base}/overview", params={"currency": "EUR"}, headers=session.member.auth)  # type: ignore[union-attr]
        ).json()
        member_orders = (
            await http.get(f"{base}/orders", params={"max_results": 100}, headers=session.member.auth)  # type: ignore[union-attr]
        ).json()
        invoices = (
            await http.get(f"{ep.billing}/v1/accounts/{session.account_id}/invoices", headers=session.owner.auth)
        ).json()

    check_story_outcome(scenario, overview, member_overview, member_orders, invoices)


def check_story_outcome(scenario: Any, overview: Any, member_overview: Any, member_orders: Any, invoices: Any) -> None:
    """What a seller relies on after the story, whatever runs the services (processes here, containers in
    tests/test_deploy_local.py): the overview equals what was ingested, the member sees DE and FR only, and
    the invoices follow DESIGN section 7, each exactly once."""
    # -- the overview equals what was ingested ------------------------------------------------------
    final = scenario.final_orders()
    rates = ecb_rates()
    by_market: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for order in final.values():
        by_market[str(order["MarketplaceId"])].append(order)
    rows = {row["marketplace_id"]: row for row in overview["marketplaces"]}
    assert set(rows) == set(by_market)
    for marketplace_id, orders in by_market.items():
        row = rows[marketplace_id]
        sold = [o for o in orders if o["OrderStatus"] != "Canceled"]
        currency = catalog.by_id(marketplace_id).currency
        assert row["orders"] == len(orders)
        assert row["orders_by_status"] == dict(Counter(str(o["OrderStatus"]) for o in orders))
        local = sum((Decimal(str(o["OrderTotal"]["Amount"])) for o in sold), Decimal(0))  # type: ignore[index]
        assert Decimal(row["gross_sales"]["local"][currency]) == local
        assert Decimal(row["gross_sales"]["reporting"]) == sum((usd_per_order(o, rates) for o in sold), Decimal(0))
    parts = sum((Decimal(r["gross_sales"]["reporting"]) for r in overview["marketplaces"]), Decimal(0))
    assert Decimal(overview["total"]["gross_sales"]["reporting"]) == parts
    assert overview["total"]["orders"] == len(final)
    refunded = sum((r.amount for r in scenario.refunds if r.currency == "USD"), Decimal(0))
    us_row = rows[catalog.resolve("US").marketplace_id]
    assert Decimal(us_row["refunds"]["local"].get("USD", "0")) == refunded

    # -- the member scoped to DE and FR sees only DE and FR -----------------------------------------
    scope = {catalog.resolve("DE").marketplace_id, catalog.resolve("FR").marketplace_id}
    assert {m["marketplace_id"] for m in member_overview["marketplaces"]} == scope
    assert member_orders["orders"] and {o["marketplace_id"] for o in member_orders["orders"]} <= scope
    de_fr = sum(1 for o in final.values() if o["MarketplaceId"] in scope)
    assert member_overview["total"]["orders"] == de_fr

    # -- invoices follow DESIGN section 7, each exactly once ----------------------------------------
    docs = invoices["invoices"]
    assert invoices["credit_notes"] == []
    assert Counter((d["period"], d["currency"]) for d in docs) == Counter(
        (p, c) for p, cs in expected.invoice_currencies(scenario).items() for c in cs
    )
    september = [d for d in docs if d["period"] == "2026-09"]
    assert [(d["currency"], d["total"]) for d in september] == [("USD", "39.99")]
    assert [catalog.by_id(line["marketplace_id"]).code for line in september[0]["lines"]] == ["US"]
    charges = expected_capped_charges(rates, date(2026, 10, 31))
    october_lines = {
        catalog.by_id(line["marketplace_id"]).code: line
        for d in docs
        if d["period"] == "2026-10"
        for line in d["lines"]
    }
    assert set(october_lines) == set(PLAN_FEES)
    for code, line in october_lines.items():
        assert Decimal(line["amount"]) == charges[code], code
        assert Decimal(line["discount"]) == PLAN_FEES[code] - charges[code]
    usd_value = sum(
        (charges[c] / rate_on_or_before(rates, date(2026, 10, 31), catalog.resolve(c).currency) for c in charges),
        Decimal(0),
    ) * rate_on_or_before(rates, date(2026, 10, 31), "USD")
    assert usd_value <= CAP_USD


def test_e2e_module_reads_the_real_ecb_file() -> None:
    """Guards the reference data the end-to-end test compares with (a file that is not there fails loudly)."""
    rates = ecb_rates()
    assert rates[date(2026, 10, 30)]["USD"] == Decimal("1.1172")
    assert rate_on_or_before(rates, date(2026, 10, 31), "JPY") == Decimal("175.68")
