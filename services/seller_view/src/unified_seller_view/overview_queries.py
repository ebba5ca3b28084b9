"""Read side of the overview: its sums from the per-day summaries, from one SQL pass, or from the pure rules
in Python, composed into the API's answer. Every function runs on a connection already pointed at the live
generation (one read-only snapshot per request)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from unified_seller_view import (
    fx_store,
    overview_rollup,
    overview_rules,
    overview_store,
    queries,
    store,
    summaries,
)
from unified_seller_view.overview_rules import OverviewQuery

PROVISIONAL_RULE = (
    "a conversion that needed a rate while no rates are published yet for its purchase day or a later day "
    "(the day's own rate may still come); final once a rate of that day or later is published"
)


async def overview_in_python(conn: asyncpg.Connection, q: OverviewQuery) -> overview_rules.Overview:
    """The reference computation: every order loaded and converted by overview_rules.build_overview. Linear in the
    account's orders on the Python side; kept as the definition the SQL aggregation is tested against."""
    reporting_currency = q.reporting_currency
    rows = await overview_store.overview_rows(conn, q)
    figures = [
        overview_rules.OrderFigures(
            marketplace_id=r["marketplace_id"],
            status=r["status"],
            currency=r["currency"],
            amount=r["amount"],
            units=r["number_of_items"],
            purchase_day=r["purchase_day"],
            refunds=tuple((x["currency"], Decimal(x["amount"])) for x in store.as_json(r["refunds"])),
        )
        for r in rows
    ]
    wanted: set[tuple[str, Any]] = set()
    for f in figures:
        for currency in {f.currency, reporting_currency, *(c for c, _ in f.refunds)}:
            if currency != overview_rules.BASE_CURRENCY:
                wanted.add((currency, f.purchase_day))
    rates = await fx_store.rates_on_or_before(conn, wanted)
    latest = await fx_store.latest_rate_day(conn)
    return overview_rules.build_overview(figures, reporting_currency, lambda c, d: rates.get((c, d)), latest)


def reporting_unit(reporting_currency: str) -> tuple[Decimal, Decimal]:
    """The reporting currency's minor unit and 10^digits (the SQL's integer scale)."""
    unit = overview_rules.minor(reporting_currency)
    exponent = unit.as_tuple().exponent
    if not isinstance(exponent, int) or not -10 <= exponent <= 0:
        raise ValueError(f"unsupported minor unit {unit} of {reporting_currency}")
    return unit, Decimal(10) ** -exponent


def absorb_sum_row(fig: overview_rules.Figures, r: Mapping[str, Any], reporting_currency: str, unit: Decimal) -> None:
    """Add one ``order`` or ``refund`` row of overview_store.OVERVIEW_SQL to ``fig`` (what build_overview would add)."""
    kind = r["kind"]
    currency = r["currency"]
    reporting = (r["reporting_units"] or 0) * unit
    if r.get("inexact_amounts"):  # rows read from the months have no inexact entries (no such column)
        reporting += sum(
            (
                overview_rules.convert(
                    amount,
                    overview_rules.Rate(currency, None, local),
                    overview_rules.Rate(reporting_currency, None, target),
                    reporting_currency,
                )
                for amount, local, target in zip(
                    r["inexact_amounts"], r["inexact_local_rates"], r["inexact_reporting_rates"], strict=True
                )
            ),
            Decimal(0),
        )
    if kind == "order":
        fig.orders += r["n"]
        fig.by_status[r["status"]] = fig.by_status.get(r["status"], 0) + r["n"]
        if r["status"] in overview_rules.NOT_A_SALE:
            return
        fig.units += r["units"]
        fig.gross_local[currency] = fig.gross_local.get(currency, Decimal(0)) + r["amount"]
        fig.converted_orders += r["n_converted"]
        fig.unconverted_orders += r["n_unconverted"]
        fig.provisional_orders += r["n_provisional"]
        if r["n_unconverted"]:
            fig.unconverted_gross[currency] = fig.unconverted_gross.get(currency, Decimal(0)) + r["amount_unconverted"]
        fig.gross_reporting += reporting
    elif kind == "refund":
        fig.refunds_local[currency] = fig.refunds_local.get(currency, Decimal(0)) + r["amount"]
        fig.provisional_refunds += r["n_provisional"]
        if r["n_unconverted"]:
            fig.unconverted_refunds[currency] = (
                fig.unconverted_refunds.get(currency, Decimal(0)) + r["amount_unconverted"]
            )
        fig.refunds_reporting += reporting
    else:
        raise ValueError(f"unexpected overview row kind {kind!r}")


async def _summaries_reader(conn: asyncpg.Connection, granularity: str | None) -> Callable[..., Awaitable[Any]] | None:
    """The months where the generation has them (overview_rollup, which also lists the rates of a plain overview),
    else the days alone (a generation built before the months), else None (one built before both: the orders)."""
    if await overview_rollup.available(conn):
        return functools.partial(overview_rollup.overview_sums, with_rates=granularity is None)
    if await summaries.kept(conn):
        return summaries.overview_sums
    return None


async def sum_rows(
    conn: asyncpg.Connection, q: OverviewQuery, *, granularity: str | None = None, per_order: bool = False
) -> Sequence[Mapping[str, Any]]:
    """The overview's aggregate rows (overview_store.OVERVIEW_SQL's shape): from the month and day summaries when
    they cover the question (a kept reporting currency, bounds on UTC midnights, a generation that has them;
    overview_rollup), from the day summaries alone in a generation without the months, else from the orders."""
    days = summaries.day_query(q) if not per_order else None
    summed = await _summaries_reader(conn, granularity) if days is not None else None
    if summed is not None and days is not None:
        return await summed(conn, days, granularity=granularity)
    _, factor = reporting_unit(q.reporting_currency)
    return await overview_store.overview_sums(conn, q, minor_factor=factor, granularity=granularity)


async def overview_in_sql(
    conn: asyncpg.Connection, q: OverviewQuery, *, per_order: bool = False
) -> overview_rules.Overview:
    """The same figures as overview_in_python, summed by PostgreSQL from the day summaries (or, with
    ``per_order`` or outside what they cover, overview_store.OVERVIEW_SQL over the orders): only aggregate rows cross
    the wire."""
    reporting_currency = q.reporting_currency
    unit, _ = reporting_unit(reporting_currency)
    rows = await sum_rows(conn, q, per_order=per_order)
    per_market: dict[str, overview_rules.Figures] = {}
    used_pairs: set[tuple[str, Any]] = set()
    found: dict[tuple[str, Any], overview_rules.Rate] = {}
    listed: list[dict[str, Any]] | None = None
    for r in rows:
        if r["kind"] == "rates":  # fx_rates_used as the answer lists it (overview_rollup)
            listed = r["rates"]
            continue
        if r["kind"] == "rate":
            if "rate_date" in r:  # the summaries say which rate served the pair
                found[(r["currency"], r["day"])] = overview_rules.Rate(
                    r["currency"], r["rate_date"], r["rate"], r["revision"], r["source"]
                )
            else:
                used_pairs.add((r["currency"], r["day"]))
            continue
        absorb_sum_row(
            per_market.setdefault(r["marketplace_id"], overview_rules.Figures()), r, reporting_currency, unit
        )
    total = overview_rules.Figures()
    for fig in per_market.values():
        total.absorb(fig)
    # the rates of the (currency, purchase day) pairs the reference would have recorded, read in this snapshot
    used = found | await fx_store.rates_on_or_before(conn, used_pairs)
    return overview_rules.Overview(reporting_currency, per_market, total, used, listed)


async def overview(
    conn: asyncpg.Connection, q: OverviewQuery, *, in_python: bool = False, per_order: bool = False
) -> dict[str, Any]:
    """The overview's JSON; ``in_python`` (the reference) and ``per_order`` (SQL over every order rather than
    the day summaries) give the same answer slower, for tests and the bench."""
    if in_python:
        result = await overview_in_python(conn, q)
    else:
        result = await overview_in_sql(conn, q, per_order=per_order)
    reporting_currency = q.reporting_currency
    per_market = []
    for marketplace_id in sorted(result.marketplaces, key=lambda m: (queries._code(m) or "~", m)):
        per_market.append(
            {**queries._market_info(marketplace_id), **result.marketplaces[marketplace_id].to_json(reporting_currency)}
        )
    return {
        "account_id": str(q.account_id),
        "account": await queries.account_summary(conn, q.account_id),
        "reporting_currency": reporting_currency,
        "purchased_after": q.purchased_after.isoformat() if q.purchased_after else None,
        "purchased_before": q.purchased_before.isoformat() if q.purchased_before else None,
        "marketplaces": per_market,
        "total": result.total.to_json(reporting_currency),
        "fx_rates_used": (
            overview_rules.rates_used_json(result.rates_used) if result.rates_listed is None else result.rates_listed
        ),
        "rules": {
            "gross_sales": "sum of OrderTotal of orders not Canceled; refunds are not subtracted",
            "refunds": "sum of refunds of orders not Canceled",
            "net_sales": "gross_sales - refunds",
            "units": "NumberOfItems of orders not Canceled",
            "conversion": (
                "each order and its refunds at the rates of its purchase day (UTC): per currency the last "
                "rate published on or before that day, latest revision; amount x rate(reporting) / "
                "rate(local), rates in units per EUR, rounded half-even per order"
            ),
            "totals": "sum of the marketplaces' rounded amounts (exactly)",
            "unconverted": "orders lacking a rate are left out of reporting amounts and listed in local currency",
            "provisional": PROVISIONAL_RULE,
        },
    }
