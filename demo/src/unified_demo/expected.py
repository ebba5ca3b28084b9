"""What the story should produce, computed from the scenario alone (no platform): the demo's and the
end-to-end test's independent reference."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

from unified_demo.scenario import Scenario
from unified_shared import catalog


def periods(scenario: Scenario) -> list[str]:
    """The calendar months the story covers (the ones billing closes)."""
    start = scenario.config.start
    end = scenario.end
    months: list[str] = []
    year, month = start.year, start.month
    while date(year, month, 1) < end.date():
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def gross_sales_local(scenario: Scenario) -> dict[str, Decimal]:
    """Per marketplace ID: sum of OrderTotal of orders whose final status is not Canceled."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for order in scenario.final_orders().values():
        if order["OrderStatus"] != "Canceled":
            totals[str(order["MarketplaceId"])] += Decimal(str(order["OrderTotal"]["Amount"]))  # type: ignore[index]
    return dict(totals)


def orders_by_marketplace(scenario: Scenario) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for order in scenario.final_orders().values():
        counts[str(order["MarketplaceId"])] += 1
    return dict(counts)


def invoice_currencies(scenario: Scenario) -> dict[str, set[str]]:
    """Per period, the currencies that get an invoice: the home currency in month one, then every
    currency of a marketplace whose plan and listings were active in the month."""
    live: dict[str, datetime] = {}
    for step in scenario.plan:
        if step.action == "activate-listings":
            live[step.marketplace] = step.at
    out: dict[str, set[str]] = {}
    months = periods(scenario)
    for index, period in enumerate(months):
        year, month = int(period[:4]), int(period[5:])
        month_end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
        if index == 0:
            out[period] = {catalog.resolve(scenario.config.home).currency}
        else:
            out[period] = {catalog.resolve(code).currency for code, at in live.items() if at < month_end}
    return out
