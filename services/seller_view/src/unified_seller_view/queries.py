"""Read side: compose the API's answers from the store and the pure rules. Every function runs on a
connection already pointed at the live generation (one read-only snapshot per request)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view import domain, store, summaries
from unified_shared import catalog

PROVISIONAL_RULE = (
    "a conversion that needed a rate while no rates are published yet for its purchase day or a later day "
    "(the day's own rate may still come); final once a rate of that day or later is published"
)


def _code(marketplace_id: str) -> str | None:
    m = catalog.MARKETPLACES.get(marketplace_id)
    return m.code if m else None


def _market_info(marketplace_id: str) -> dict[str, Any]:
    m = catalog.MARKETPLACES.get(marketplace_id)
    return {
        "marketplace_id": marketplace_id,
        "code": m.code if m else None,
        "country_code": m.country_code if m else None,
        "currency": m.currency if m else None,
        "region": m.region.value if m else None,
    }


async def account_summary(conn: asyncpg.Connection, account_id: UUID) -> dict[str, Any] | None:
    row = await store.get_account(conn, account_id)
    if row is None:
        return None
    return {
        "legal_name": row["legal_name"],
        "home_marketplace_id": row["home_marketplace_id"],
        "registered_at": row["registered_at"].isoformat(),
    }


async def overview_in_python(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    marketplaces: list[str] | None,
    reporting_currency: str,
    purchased_after: datetime | None = None,
    purchased_before: datetime | None = None,
) -> domain.Overview:
    """The reference computation: every order loaded and converted by domain.build_overview. Linear in the
    account's orders on the Python side; kept as the definition the SQL aggregation is tested against."""
    rows = await store.overview_rows(conn, account_id, marketplaces, purchased_after, purchased_before)
    figures = [
        domain.OrderFigures(
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
            if currency != domain.BASE_CURRENCY:
                wanted.add((currency, f.purchase_day))
    rates = await store.rates_on_or_before(conn, wanted)
    latest = await store.latest_rate_day(conn)
    return domain.build_overview(figures, reporting_currency, lambda c, d: rates.get((c, d)), latest)


def reporting_unit(reporting_currency: str) -> tuple[Decimal, Decimal]:
    """The reporting currency's minor unit and 10^digits (the SQL's integer scale)."""
    unit = domain.minor(reporting_currency)
    exponent = unit.as_tuple().exponent
    if not isinstance(exponent, int) or not -10 <= exponent <= 0:
        raise ValueError(f"unsupported minor unit {unit} of {reporting_currency}")
    return unit, Decimal(10) ** -exponent


def absorb_sum_row(fig: domain.Figures, r: Mapping[str, Any], reporting_currency: str, unit: Decimal) -> None:
    """Add one ``order`` or ``refund`` row of store.OVERVIEW_SQL to ``fig`` (what build_overview would add)."""
    kind = r["kind"]
    currency = r["currency"]
    inexact = [
        domain.convert(
            amount,
            domain.Rate(currency, None, local),
            domain.Rate(reporting_currency, None, target),
            reporting_currency,
        )
        for amount, local, target in zip(
            r["inexact_amounts"] or [],
            r["inexact_local_rates"] or [],
            r["inexact_reporting_rates"] or [],
            strict=True,
        )
    ]
    reporting = (r["reporting_units"] or 0) * unit + sum(inexact, Decimal(0))
    if kind == "order":
        fig.orders += r["n"]
        fig.by_status[r["status"]] = fig.by_status.get(r["status"], 0) + r["n"]
        if r["status"] in domain.NOT_A_SALE:
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


async def sum_rows(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    marketplaces: list[str] | None,
    reporting_currency: str,
    purchased_after: datetime | None,
    purchased_before: datetime | None,
    granularity: str | None = None,
    per_order: bool = False,
) -> Sequence[Mapping[str, Any]]:
    """The overview's aggregate rows (store.OVERVIEW_SQL's shape): from the day summaries when they cover the
    question (a kept reporting currency, bounds on UTC midnights, a generation that has them), else from the
    orders themselves."""
    days = summaries.day_bounds(purchased_after, purchased_before)
    if (
        not per_order
        and reporting_currency in summaries.REPORTING_CURRENCIES
        and days is not None
        and await summaries.kept(conn)  # a generation built before them: the orders themselves
    ):
        return await summaries.overview_sums(
            conn,
            account_id,
            marketplaces=marketplaces,
            first_day=days[0],
            end_day=days[1],
            reporting_currency=reporting_currency,
            granularity=granularity,
        )
    _, factor = reporting_unit(reporting_currency)
    return await store.overview_sums(
        conn,
        account_id,
        marketplaces=marketplaces,
        purchased_after=purchased_after,
        purchased_before=purchased_before,
        reporting_currency=reporting_currency,
        minor_factor=factor,
        granularity=granularity,
    )


async def overview_in_sql(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    marketplaces: list[str] | None,
    reporting_currency: str,
    purchased_after: datetime | None = None,
    purchased_before: datetime | None = None,
    per_order: bool = False,
) -> domain.Overview:
    """The same figures as overview_in_python, summed by PostgreSQL from the day summaries (or, with
    ``per_order`` or outside what they cover, store.OVERVIEW_SQL over the orders): only aggregate rows cross
    the wire."""
    unit, _ = reporting_unit(reporting_currency)
    rows = await sum_rows(
        conn,
        account_id,
        marketplaces=marketplaces,
        reporting_currency=reporting_currency,
        purchased_after=purchased_after,
        purchased_before=purchased_before,
        per_order=per_order,
    )
    per_market: dict[str, domain.Figures] = {}
    used_pairs: set[tuple[str, Any]] = set()
    found: dict[tuple[str, Any], domain.Rate] = {}
    for r in rows:
        if r["kind"] == "rate":
            if "rate_date" in r:  # the summaries say which rate served the pair
                found[(r["currency"], r["day"])] = domain.Rate(
                    r["currency"], r["rate_date"], r["rate"], r["revision"], r["source"]
                )
            else:
                used_pairs.add((r["currency"], r["day"]))
            continue
        absorb_sum_row(per_market.setdefault(r["marketplace_id"], domain.Figures()), r, reporting_currency, unit)
    total = domain.Figures()
    for fig in per_market.values():
        total.absorb(fig)
    # the rates of the (currency, purchase day) pairs the reference would have recorded, read in this snapshot
    used = found | await store.rates_on_or_before(conn, used_pairs)
    return domain.Overview(reporting_currency, per_market, total, used)


async def overview(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    marketplaces: list[str] | None,
    reporting_currency: str,
    purchased_after: datetime | None = None,
    purchased_before: datetime | None = None,
    in_python: bool = False,
    per_order: bool = False,
) -> dict[str, Any]:
    """The overview's JSON; ``in_python`` (the reference) and ``per_order`` (SQL over every order rather than
    the day summaries) give the same answer slower, for tests and the bench."""
    if in_python:
        result = await overview_in_python(
            conn,
            account_id,
            marketplaces=marketplaces,
            reporting_currency=reporting_currency,
            purchased_after=purchased_after,
            purchased_before=purchased_before,
        )
    else:
        result = await overview_in_sql(
            conn,
            account_id,
            marketplaces=marketplaces,
            reporting_currency=reporting_currency,
            purchased_after=purchased_after,
            purchased_before=purchased_before,
            per_order=per_order,
        )
    per_market = []
    for marketplace_id in sorted(result.marketplaces, key=lambda m: (_code(m) or "~", m)):
        per_market.append(
            {**_market_info(marketplace_id), **result.marketplaces[marketplace_id].to_json(reporting_currency)}
        )
    return {
        "account_id": str(account_id),
        "account": await account_summary(conn, account_id),
        "reporting_currency": reporting_currency,
        "purchased_after": purchased_after.isoformat() if purchased_after else None,
        "purchased_before": purchased_before.isoformat() if purchased_before else None,
        "marketplaces": per_market,
        "total": result.total.to_json(reporting_currency),
        "fx_rates_used": domain.rates_used_json(result.rates_used),
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


def _order_json(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "amazon_order_id": r["amazon_order_id"],
        "marketplace_id": r["marketplace_id"],
        "marketplace": _code(r["marketplace_id"]),
        "region": r["region"],
        "purchase_date": r["purchase_date"].isoformat(),
        "last_update_date": r["last_update_date"].isoformat(),
        "order_status": r["status"],
        "fulfillment_channel": r["fulfillment_channel"],
        "order_total": {
            "currency_code": r["currency"],
            "amount": format(r["amount"].quantize(domain.minor(r["currency"])), "f"),
        },
        "number_of_items": r["number_of_items"],
        # whether a conversion of this order (to any other currency) would be at its day's rates
        "conversion": {True: "provisional", False: "final", None: "none"}[r["provisional"]],
        "number_of_items_shipped": r["items_shipped"],
        "number_of_items_unshipped": r["items_unshipped"],
        "refunds": [
            {"currency_code": x["currency"], "amount": x["amount"], "refunded_at": x["refunded_at"]}
            for x in store.as_json(r["refunds"])
        ],
    }


async def orders(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    marketplaces: list[str] | None,
    statuses: list[str] | None,
    purchased_after: datetime | None,
    purchased_before: datetime | None,
    order_ids: list[str] | None,
    next_token: str | None,
    max_results: int,
) -> dict[str, Any]:
    filters = {
        "m": marketplaces,
        "s": sorted(statuses) if statuses else None,
        "a": purchased_after.isoformat() if purchased_after else None,
        "b": purchased_before.isoformat() if purchased_before else None,
        "o": sorted(order_ids) if order_ids else None,
        "n": max_results,
    }
    after = domain.decode_page_token(next_token, filters) if next_token else None
    rows = await store.orders_page(
        conn,
        account_id,
        marketplaces=marketplaces,
        statuses=statuses,
        purchased_after=purchased_after,
        purchased_before=purchased_before,
        order_ids=order_ids,
        after=after,
        limit=max_results + 1,
    )
    page = rows[:max_results]
    token = None
    if len(rows) > max_results:
        last = page[-1]
        token = domain.encode_page_token(last["purchase_date"], last["amazon_order_id"], filters)
    return {"orders": [_order_json(r) for r in page], "next_token": token}


async def buyer_messages(
    conn: asyncpg.Connection,
    account_id: UUID,
    *,
    marketplaces: list[str] | None,
    as_of: datetime,
) -> dict[str, Any]:
    longest = max(domain.LATE_RATE_WINDOWS_DAYS)
    cycles = await store.cycles_for(conn, account_id, marketplaces, as_of - timedelta(days=longest), as_of)
    waiting = [c for c in cycles if domain.awaiting_at(c, as_of)]
    threads = await store.threads_by_id(conn, account_id, sorted({c.thread_id for c in waiting}))
    listed = []
    for c in sorted(waiting, key=lambda c: (c.deadline, c.thread_id)):
        status = domain.classify(c, as_of)
        t = threads.get(c.thread_id)
        listed.append(
            {
                "thread_id": c.thread_id,
                "marketplace_id": c.marketplace_id,
                "marketplace": _code(c.marketplace_id),
                "amazon_order_id": t["amazon_order_id"] if t else None,
                "subject": t["subject"] if t else None,
                "awaiting_since": c.started_at.isoformat(),
                "deadline": c.deadline.isoformat(),
                "status": status,
                "overdue": status == "overdue",
                "due_soon": status == "due_soon",
                "minutes_left": int((c.deadline - as_of).total_seconds() // 60),
            }
        )
    return {
        "as_of": as_of.isoformat(),
        "counts": {
            "awaiting_reply": len(listed),
            "overdue": sum(1 for t in listed if t["overdue"]),
            "due_soon": sum(1 for t in listed if t["due_soon"]),
        },
        "threads": listed,
        "late_response_rate": {
            f"{days}d": domain.late_response_rate(cycles, as_of, days).to_json()
            for days in domain.LATE_RATE_WINDOWS_DAYS
        },
        "rules": {
            "awaiting_reply": "from the first unanswered buyer message until a reply or a 'no response needed' mark",
            "overdue": "more than 24 h of calendar time since the first unanswered buyer message",
            "due_soon": "not overdue and the 24 h deadline is at most 4 h away",
            "late_response_rate": (
                "late / threads_due, over waits whose 24 h deadline fell in (as_of - N days, as_of]; late = "
                "answered (reply or 'no response needed') after the deadline, or still unanswered at as_of"
            ),
        },
    }


async def subscriptions(conn: asyncpg.Connection, account_id: UUID, marketplaces: list[str] | None) -> dict[str, Any]:
    states = await store.participations(conn, account_id, marketplaces)
    history = await store.participation_history(conn, account_id, marketplaces)
    by_market: dict[str, list[dict[str, Any]]] = {}
    for h in history:
        by_market.setdefault(h["marketplace_id"], []).append(
            {"event": h["event_type"], "at": h["at"].isoformat(), "reason": h["reason"]}
        )
    out = []
    for s in states:
        out.append(
            {
                **_market_info(s["marketplace_id"]),
                "participation": s["participation"],
                "suspended_reason": s["suspended_reason"],
                "subscription": s["subscription"],
                "plan": "Professional" if s["subscription"] != "none" else None,
                "listings": s["listings"],
                "opened_at": s["opened_at"].isoformat() if s["opened_at"] else None,
                "subscribed_since": s["subscribed_since"].isoformat() if s["subscribed_since"] else None,
                "last_change_at": s["last_change_at"].isoformat(),
                "history": by_market.get(s["marketplace_id"], []),
            }
        )
    out.sort(key=lambda m: (m["code"] or "~", m["marketplace_id"]))
    return {"account_id": str(account_id), "marketplaces": out}


def _visible_lines(lines: Sequence[dict[str, Any]], marketplaces: list[str] | None) -> list[dict[str, Any]]:
    return [line for line in lines if marketplaces is None or line.get("marketplace_id") in marketplaces]


def _document(row: asyncpg.Record, id_field: str, marketplaces: list[str] | None) -> dict[str, Any] | None:
    """An invoice or credit note as the caller may see it: lines outside the scope are hidden, and then so
    is the document's total (``partial``); a document with no visible line is not shown at all."""
    lines = store.as_json(row["lines"])
    visible = _visible_lines(lines, marketplaces)
    if not visible:
        return None
    partial = len(visible) != len(lines)
    doc: dict[str, Any] = {
        id_field: row[id_field],
        "period": row["period"],
        "currency": row["currency"],
        "issued_at": row["issued_at"].isoformat(),
        "lines": visible,
        "partial": partial,
        "total": None if partial else format(row["total"], "f"),
        "visible_lines_amount": format(sum((Decimal(str(line["amount"])) for line in visible), Decimal(0)), "f"),
    }
    if "discount" in row.keys():  # noqa: SIM118 (a Record, not a dict)
        doc["discount"] = None if partial else format(row["discount"], "f")
        doc["kind"] = row["kind"]
    if "reason" in row.keys():  # noqa: SIM118
        doc["invoice_id"] = row["invoice_id"]
        doc["reason"] = row["reason"]
    return doc


async def invoices(
    conn: asyncpg.Connection, account_id: UUID, marketplaces: list[str] | None, limit: int
) -> dict[str, Any]:
    rows = await store.latest_invoices(conn, account_id, limit)
    docs = [d for d in (_document(r, "invoice_id", marketplaces) for r in rows) if d is not None]
    notes = await store.credit_notes_for(conn, account_id, [d["invoice_id"] for d in docs])
    credit = [d for d in (_document(r, "credit_note_id", marketplaces) for r in notes) if d is not None]
    return {"account_id": str(account_id), "invoices": docs, "credit_notes": credit}
