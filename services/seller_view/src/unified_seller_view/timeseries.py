"""Trends for charts: sales, units, orders and refunds per marketplace per day, week or month, in the
reporting currency, by the overview's own rules (each order converted at its purchase day's rates, rounded
half-even per order; buckets are sums of those rounded amounts) and from the same SQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view import overview_queries, overview_rules, queries

GRANULARITIES = ("day", "week", "month")
MAX_BUCKETS = 400  # a chart of more points than this is not a chart: ask for a coarser granularity


class BadRange(ValueError):
    """The requested range or granularity cannot be answered (the API turns it into a 422 naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def bucket_start(day: date, granularity: str) -> date:
    """The first day of the bucket holding ``day``: itself, its ISO week's Monday, or its month's first day."""
    if granularity == "day":
        return day
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    raise BadRange("granularity", f"granularity must be one of {', '.join(GRANULARITIES)}")


def next_bucket(start: date, granularity: str) -> date:
    if granularity == "day":
        return start + timedelta(days=1)
    if granularity == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def buckets(first: date, last: date, granularity: str) -> list[date]:
    """Every bucket start from the one holding ``first`` to the one holding ``last`` (both days included)."""
    if last < first:
        raise BadRange("to", "to must not be before from")
    out: list[date] = []
    current = bucket_start(first, granularity)
    while current <= last:
        out.append(current)
        if len(out) > MAX_BUCKETS:
            raise BadRange("granularity", f"more than {MAX_BUCKETS} buckets: choose a shorter range or a coarser one")
        current = next_bucket(current, granularity)
    return out


def default_range(today: date, granularity: str) -> tuple[date, date]:
    """Without from: the last 30 days, 12 weeks or 12 months up to ``to`` (default today, UTC)."""
    if granularity == "day":
        return today - timedelta(days=29), today
    if granularity == "week":
        return bucket_start(today, "week") - timedelta(weeks=11), today
    first = bucket_start(today, "month")
    for _ in range(11):
        first = bucket_start(first - timedelta(days=1), "month")
    return first, today


def _point(fig: overview_rules.Figures, reporting_currency: str) -> dict[str, Any]:
    q = overview_rules.minor(reporting_currency)
    return {
        "sales": format(fig.gross_reporting.quantize(q), "f"),
        "refunds": format(fig.refunds_reporting.quantize(q), "f"),
        "net_sales": format((fig.gross_reporting - fig.refunds_reporting).quantize(q), "f"),
        "units": fig.units,
        "orders": fig.orders,
        "canceled_orders": fig.by_status.get("Canceled", 0),
        "conversion": fig.conversion(),
        "unconverted_orders": fig.unconverted_orders,
        "provisional_orders": fig.provisional_orders + fig.provisional_refunds,
    }


async def timeseries(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    marketplaces: list[str] | None,
    reporting_currency: str,
    granularity: str,
    first: date,
    last: date,
) -> dict[str, Any]:
    starts = buckets(first, last, granularity)
    unit, _ = overview_queries.reporting_unit(reporting_currency)
    window = overview_queries.OverviewQuery(
        account_id,
        reporting_currency,
        marketplaces,
        purchased_after=datetime.combine(first, time(0), tzinfo=UTC),
        purchased_before=datetime.combine(last + timedelta(days=1), time(0), tzinfo=UTC),
    )
    rows = await overview_queries.sum_rows(conn, window, granularity=granularity)
    cells: dict[tuple[date, str], overview_rules.Figures] = {}
    for r in rows:
        if r["kind"] == "rate":
            continue
        overview_queries.absorb_sum_row(
            cells.setdefault((r["bucket"], r["marketplace_id"]), overview_rules.Figures()), r, reporting_currency, unit
        )
    markets = sorted({m for _, m in cells}, key=lambda m: (queries._code(m) or "~", m))
    out_buckets = []
    for start in starts:
        total = overview_rules.Figures()
        per_market = []
        for m in markets:
            fig = cells.get((start, m), overview_rules.Figures())
            total.absorb(fig)
            per_market.append({"marketplace_id": m, "marketplace": queries._code(m), **_point(fig, reporting_currency)})
        end = next_bucket(start, granularity)
        out_buckets.append(
            {
                "start": start.isoformat(),
                "end": (end - timedelta(days=1)).isoformat(),
                "from": max(start, first).isoformat(),
                "to": min(end - timedelta(days=1), last).isoformat(),
                "marketplaces": per_market,
                "total": _point(total, reporting_currency),
            }
        )
    return {
        "account_id": str(account_id),
        "reporting_currency": reporting_currency,
        "granularity": granularity,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "marketplaces": [queries._market_info(m) for m in markets],
        "buckets": out_buckets,
        "rules": {
            "sales": "OrderTotal of orders not Canceled purchased in the bucket (UTC days), in reporting currency",
            "refunds": "refunds of those orders (counted in the bucket of the order's purchase day)",
            "orders": "orders purchased in the bucket, canceled ones included (canceled_orders says how many)",
            "units": "NumberOfItems of orders not Canceled",
            "conversion": "as the overview: each order at its purchase day's rates, rounded half-even per order",
            "provisional": overview_queries.PROVISIONAL_RULE,
            "buckets": "day, ISO week (Monday first) or calendar month; from and to (both included) clip the "
            "first and last bucket; buckets without orders are listed with zeros",
        },
    }
