"""`make demo`: drive a realistic multi-marketplace seller through the running platform and report.

python -m unified_demo [--seed 7] [--days 61] [--orders-per-day 24] [--once]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from rich.console import Console
from rich.rule import Rule

from unified_demo import expected, report
from unified_demo.driver import DemoError, Driver, Operations, Session
from unified_demo.endpoints import Endpoints
from unified_demo.listings import InternationalOffers, ListingsOutcome, offers_table, rules_line
from unified_demo.scenario import Scenario, ScenarioConfig, build

LATEST_STORY_END = date(2026, 11, 1)


@dataclass(slots=True)
class DemoOutcome:
    scenario: Scenario
    session: Session
    overview_usd: dict[str, Any]
    overview_eur: dict[str, Any]
    member_overview: dict[str, Any]
    member_us_orders_status: int
    messages: dict[str, Any]
    invoices: dict[str, Any]
    orders: list[dict[str, Any]]
    listings: ListingsOutcome | None = None


async def run(config: ScenarioConfig, endpoints: Endpoints, console: Console, run_id: str | None = None) -> DemoOutcome:
    """The whole story through the public APIs; returns what the views answered (the e2e test checks it)."""
    scenario = build(config)
    run_id = run_id or secrets.token_hex(3)
    months = expected.periods(scenario)
    async with httpx.AsyncClient(timeout=60.0) as http:
        with console.status("starting", spinner="dots") as status:

            def step(text: str) -> None:
                console.print(f"[green]✓[/] {text}")
                status.update(text)

            driver = Driver(endpoints, scenario, http, step)
            ops = Operations(endpoints, scenario, http, step)
            await driver.wait_ready()
            await ops.import_fx_rates()
            session = await driver.register_and_sign_in(run_id)
            await driver.open_marketplaces(session)
            await driver.invite_member(session, run_id)
            status.update("ingesting two months of orders")
            await driver.ingest_orders(session)
            status.update("ingesting buyer messages")
            await driver.ingest_messages(session)
            status.update("waiting for billing to see every subscription and rate")
            await ops.wait_for_billing_inputs(session, months)
            await ops.close_periods(session, months)
            invoices_expected = sum(len(c) for c in expected.invoice_currencies(scenario).values())
            status.update("waiting for the unified view to catch up")
            await ops.wait_for_view(session, len(scenario.final_orders()), invoices_expected)
            outcome = await _collect(http, endpoints, scenario, session)
            status.update("linking the US offers to six marketplaces, then a new FX day")
            offers = InternationalOffers(http, endpoints.listings, endpoints.regions, endpoints.operator_token, step)
            outcome.listings = await offers.run(session)
    return outcome


async def _get(http: httpx.AsyncClient, url: str, token: Any, **params: Any) -> dict[str, Any]:
    answer = await http.get(url, params=params, headers=token.auth)
    if answer.status_code != 200:
        raise DemoError(f"GET {url}: HTTP {answer.status_code} {answer.text[:300]}")
    data: dict[str, Any] = answer.json()
    return data


async def _collect(http: httpx.AsyncClient, ep: Endpoints, scenario: Scenario, session: Session) -> DemoOutcome:
    base = f"{ep.seller_view}/v1/accounts/{session.account_id}"
    owner = session.owner
    overview_usd = await _get(http, f"{base}/overview", owner, currency="USD")
    overview_eur = await _get(http, f"{base}/overview", owner, currency="EUR")
    assert session.member is not None
    member_overview = await _get(http, f"{base}/overview", session.member, currency="EUR")
    member_us = await http.get(
        f"{ep.orders['NA']}/orders/v0/orders",
        params={"MarketplaceIds": "ATVPDKIKX0DER", "CreatedAfter": scenario.config.start.isoformat() + "T00:00:00Z"},
        headers=session.member.auth,
    )
    as_of = (scenario.end - timedelta(minutes=1)).isoformat()
    messages = await _get(http, f"{base}/messages", owner, as_of=as_of)
    invoices = await _get(http, f"{ep.billing}/v1/accounts/{session.account_id}/invoices", owner)
    orders: list[dict[str, Any]] = []
    token: str | None = None
    while True:  # every order across marketplaces and regions, page by page (keyset NextToken)
        page = await _get(http, f"{base}/orders", owner, max_results=100, **({"next_token": token} if token else {}))
        orders.extend(page["orders"])
        token = page.get("next_token")
        if not token:
            break
    return DemoOutcome(
        scenario,
        session,
        overview_usd,
        overview_eur,
        member_overview,
        member_us.status_code,
        messages,
        invoices,
        orders,
    )


def print_report(console: Console, outcome: DemoOutcome, endpoints: Endpoints) -> None:
    cfg = outcome.scenario.config
    console.print(Rule("unified-seller: Northwind Outfitters, one account in seven marketplaces"))
    console.print(
        f"account {outcome.session.account_id}  owner {outcome.session.owner_email}  "
        f"story {cfg.start} .. {cfg.start + timedelta(days=cfg.days - 1)}  seed {cfg.seed}  "
        f"~{cfg.orders_per_day} orders/day"
    )
    gross = expected.gross_sales_local(outcome.scenario)
    console.print(report.overview_table(outcome.overview_usd, "Unified overview in USD", gross))
    console.print(report.rates_line(outcome.overview_usd))
    console.print(report.overview_table(outcome.overview_eur, "Unified overview in EUR"))
    # USD per unit of each currency and purchase day, from the rates the view says it used (units per EUR).
    usd_rates: dict[tuple[str, str], Decimal] = {}
    per_day: dict[str, dict[str, Decimal]] = {}
    for rate in outcome.overview_usd["fx_rates_used"]:
        for day in rate["used_for_purchase_days"]:
            per_day.setdefault(day, {})[rate["currency"]] = Decimal(rate["rate"])
    for day, rates in per_day.items():
        usd = rates.get("USD")
        for currency, value in rates.items():
            if usd is not None:
                usd_rates[(currency, day)] = usd / value
        if usd is not None:
            usd_rates[("EUR", day)] = usd
        usd_rates[("USD", day)] = Decimal(1)
    console.print(report.largest_orders_table(outcome.orders, usd_rates))
    console.print(f"{len(outcome.orders)} orders listed across NA, EU and FE through one keyset-paginated API")
    console.print(report.threads_table(outcome.messages))
    console.print(report.late_rate_line(outcome.messages))
    member = outcome.member_overview
    codes = ", ".join(sorted(m["code"] for m in member["marketplaces"]))
    console.print(
        report.overview_table(member, f"{outcome.session.member_email} (member, scope DE + FR) sees only: {codes}")
    )
    console.print(f"the member asking the NA orders API for US orders gets HTTP {outcome.member_us_orders_status}")
    console.print(report.invoices_table(outcome.invoices))
    for line in report.cap_lines(outcome.invoices):
        console.print(line)
    if outcome.listings is not None:
        console.print(offers_table(outcome.listings))
        console.print(rules_line())
    report.print_where(console, {**endpoints.all_services(), "listings": endpoints.listings})
    report.print_web(console, endpoints.web, outcome.session.owner_email, outcome.session.password)


def main() -> None:
    parser = argparse.ArgumentParser(description="Drive a realistic multi-marketplace seller through unified-seller")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=61, help="length of the story from 2026-09-01")
    parser.add_argument("--orders-per-day", type=int, default=24)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 9, 1))
    parser.add_argument("--once", action="store_true", help="stop after the report instead of waiting for Ctrl-C")
    args = parser.parse_args()
    story_end = args.start + timedelta(days=args.days)
    if args.days < 1 or story_end > LATEST_STORY_END:
        # Billing closes each month of the story: a month must have ended and have ECB rates for its last day.
        parser.error(
            f"the story must end by {LATEST_STORY_END} (the ECB history shipped with the platform ends 2026-10-30 "
            f"and November has not ended): at most {(LATEST_STORY_END - args.start).days} days from {args.start}"
        )
    console = Console(width=None if sys.stdout.isatty() else 150)
    config = ScenarioConfig(seed=args.seed, start=args.start, days=args.days, orders_per_day=args.orders_per_day)
    endpoints = Endpoints.from_env()
    try:
        outcome = asyncio.run(run(config, endpoints, console))
    except DemoError as exc:
        console.print(f"[red]demo failed:[/] {exc}")
        sys.exit(1)
    print_report(console, outcome, endpoints)
    if args.once:
        return
    console.print("The platform keeps running; press Ctrl-C to stop it.")
    try:
        asyncio.run(asyncio.Event().wait())
    except KeyboardInterrupt:
        console.print("stopping")


if __name__ == "__main__":
    main()
