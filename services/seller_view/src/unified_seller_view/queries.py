"""Read side: compose the API's answers from the store and the pure rules (the overview's in
``overview_queries``). Every function runs on a connection already pointed at the live generation (one
read-only snapshot per request)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from unified_seller_view import (
    accounts_store,
    billing_store,
    domain,
    messages_store,
    overview_rules,
    overview_store,
    reply_wait_rules,
    store,
)
from unified_shared import catalog


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
    row = await accounts_store.get_account(conn, account_id)
    if row is None:
        return None
    return {
        "legal_name": row["legal_name"],
        "home_marketplace_id": row["home_marketplace_id"],
        "registered_at": row["registered_at"].isoformat(),
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
            "amount": format(r["amount"].quantize(overview_rules.minor(r["currency"])), "f"),
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
    conn: asyncpg.Connection, q: domain.OrdersQuery, *, next_token: str | None, max_results: int
) -> dict[str, Any]:
    filters = q.filters(max_results)
    after = domain.decode_page_token(next_token, filters) if next_token else None
    rows = await overview_store.orders_page(conn, q, after=after, limit=max_results + 1)
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
    longest = max(reply_wait_rules.LATE_RATE_WINDOWS_DAYS)
    cycles = await messages_store.cycles_for(conn, account_id, marketplaces, as_of - timedelta(days=longest), as_of)
    waiting = [c for c in cycles if reply_wait_rules.awaiting_at(c, as_of)]
    threads = await messages_store.threads_by_id(conn, account_id, sorted({c.thread_id for c in waiting}))
    listed = []
    for c in sorted(waiting, key=lambda c: (c.deadline, c.thread_id)):
        status = reply_wait_rules.classify(c, as_of)
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
            f"{days}d": reply_wait_rules.late_response_rate(cycles, as_of, days).to_json()
            for days in reply_wait_rules.LATE_RATE_WINDOWS_DAYS
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
    states = await accounts_store.participations(conn, account_id, marketplaces)
    history = await accounts_store.participation_history(conn, account_id, marketplaces)
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
    rows = await billing_store.latest_invoices(conn, account_id, limit)
    docs = [d for d in (_document(r, "invoice_id", marketplaces) for r in rows) if d is not None]
    notes = await billing_store.credit_notes_for(conn, account_id, [d["invoice_id"] for d in docs])
    credit = [d for d in (_document(r, "credit_note_id", marketplaces) for r in notes) if d is not None]
    return {"account_id": str(account_id), "invoices": docs, "credit_notes": credit}
