"""Pure rules of the pages: what a token lets a user see, how filters and forms are read, what the cap saved.
No I/O here; the unit tests cover every function."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, get_args

from unified_shared import catalog
from unified_shared.auth import Principal
from unified_shared.contracts.orders import OrderStatus

# The AmazonOrderIds the order pages accept (what seller_view's order detail accepts).
ORDER_ID = re.compile(r"[0-9A-Za-z-]{1,64}")

ORDER_STATUSES: tuple[str, ...] = get_args(OrderStatus)  # the orders contract's, in its order
REPORTING_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "MXN")
GRANULARITIES = ("day", "week", "month")
# What an owner may grant a member: identity's MEMBER_PERMISSIONS (tests/test_permissions_agree.py keeps them equal).
GRANTABLE = ("orders", "messages", "reports", "listings")
PAGE_SIZES = (25, 50, 100)


class FormError(ValueError):
    """Bad input from a form or a query: names the field, shown next to it (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# -- what a token lets a user see ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Page:
    path: str
    title: str


PAGES = (
    Page("/", "Overview"),
    Page("/orders", "Orders"),
    Page("/offers", "Offers"),
    Page("/messages", "Buyer messages"),
    Page("/marketplaces", "Marketplaces"),
    Page("/team", "Team"),
    Page("/billing", "Billing"),
)


def may_see(principal: Principal, path: str) -> bool:
    """The pages the platform's APIs would answer for this token (the APIs still decide every call)."""
    if path == "/":
        return principal.has("reports") or principal.has("orders")
    if path == "/orders":
        return principal.has("orders")
    if path == "/offers":
        return principal.has("listings") or principal.has("reports")
    if path == "/messages":
        return principal.has("messages")
    if path == "/team":
        return principal.role in ("owner", "admin")
    if path == "/billing":
        return principal.has("billing")
    return True  # marketplaces: every member may read participations


def may_change_marketplaces(principal: Principal) -> bool:
    return principal.role in ("owner", "admin")


def navigation(principal: Principal) -> list[Page]:
    return [p for p in PAGES if may_see(principal, p.path)]


def scope_codes(principal: Principal) -> list[str] | None:
    """Marketplace codes of the token's scope, None for all."""
    if principal.marketplaces == "*":
        return None
    return sorted(catalog.by_id(m).code for m in principal.marketplaces if m in catalog.MARKETPLACES)


# -- query and form parsing ---------------------------------------------------------------------------------
def reporting_currency(value: str | None, default: str = "USD") -> str:
    currency = (value or default).strip().upper()
    if currency not in REPORTING_CURRENCIES:
        raise FormError("currency", f"choose one of {', '.join(REPORTING_CURRENCIES)}")
    return currency


def granularity(value: str | None) -> str:
    chosen = (value or "day").strip().lower()
    if chosen not in GRANULARITIES:
        raise FormError("granularity", "choose day, week or month")
    return chosen


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FormError(name, "a date like 2026-10-31") from None


@dataclass(slots=True)
class OrderFilters:
    marketplace: str = ""
    status: str = ""
    purchased_from: str = ""
    purchased_to: str = ""
    order_id: str = ""
    page_size: int = 25

    def as_query(self) -> dict[str, str]:
        """The filters for this page's own links (empty ones left out)."""
        values = {
            "marketplace": self.marketplace,
            "status": self.status,
            "from": self.purchased_from,
            "to": self.purchased_to,
            "order_id": self.order_id,
        }
        query = {k: v for k, v in values.items() if v}
        if self.page_size != PAGE_SIZES[0]:
            query["page_size"] = str(self.page_size)
        return query


def order_filters(query: dict[str, str]) -> tuple[OrderFilters, dict[str, str]]:
    """The orders page's filters and the seller_view query they make. Raises FormError naming the field."""
    f = OrderFilters()
    params: dict[str, str] = {}
    marketplace = query.get("marketplace", "").strip()
    if marketplace:
        try:
            f.marketplace = catalog.resolve(marketplace).code
        except catalog.UnknownMarketplace:
            raise FormError("marketplace", "unknown marketplace") from None
        params["marketplace"] = f.marketplace
    status = query.get("status", "").strip()
    if status:
        if status not in ORDER_STATUSES:
            raise FormError("status", "unknown order status")
        f.status = params["status"] = status
    start = end = None
    if query.get("from", "").strip():
        start = _day(query["from"].strip(), "from")
        f.purchased_from = start.isoformat()
        params["purchased_after"] = datetime.combine(start, time.min, UTC).isoformat()
    if query.get("to", "").strip():
        end = _day(query["to"].strip(), "to")
        f.purchased_to = end.isoformat()
        params["purchased_before"] = datetime.combine(end, time.max, UTC).isoformat()
    if start and end and end < start:
        raise FormError("to", "the end date is before the start date")
    order_id = query.get("order_id", "").strip()
    if order_id:
        if len(order_id) > 40 or not all(c in "0123456789-" for c in order_id):
            raise FormError("order_id", "an order ID like 111-1234567-1234567")
        f.order_id = params["order_id"] = order_id
    size = query.get("page_size", "").strip()
    if size:
        # ASCII digits only: str.isdigit() also accepts "²", which int() then rejects (a 500, not a form error).
        if not (size.isascii() and size.isdigit()) or int(size) not in PAGE_SIZES:
            raise FormError("page_size", f"choose {', '.join(map(str, PAGE_SIZES))}")
        f.page_size = int(size)
    params["max_results"] = str(f.page_size)
    token = query.get("next_token", "").strip()
    if token:
        if len(token) > 2000:
            raise FormError("next_token", "this page link is damaged: start from the first page")
        params["next_token"] = token
    return f, params


def invitation(form: dict[str, Any]) -> dict[str, Any]:
    """The invitation request identity expects, from the team page's form."""
    email = str(form.get("email", "")).strip()
    if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
        raise FormError("email", "an e-mail address like ann@example.com")
    role = str(form.get("role", "member"))
    if role not in ("member", "admin"):
        raise FormError("role", "member or admin")
    body: dict[str, Any] = {"email": email, "role": role, **grant(form)}
    name = str(form.get("name", "")).strip()
    if len(name) > 200:
        raise FormError("name", "at most 200 characters")
    if name:
        body["name"] = name
    return body


def grant(form: dict[str, Any]) -> dict[str, Any]:
    """Permissions and marketplace scope from checkboxes (``permissions``, ``marketplaces``, ``all_marketplaces``)."""
    permissions = _values(form, "permissions")
    unknown = [p for p in permissions if p not in GRANTABLE]
    if unknown:
        raise FormError("permissions", f"unknown permission {unknown[0]}")
    if form.get("all_marketplaces"):
        return {"permissions": permissions, "marketplaces": "*"}
    codes = []
    for ref in _values(form, "marketplaces"):
        try:
            codes.append(catalog.resolve(ref).code)
        except catalog.UnknownMarketplace:
            raise FormError("marketplaces", f"unknown marketplace {ref}") from None
    if not codes:
        raise FormError("marketplaces", "choose at least one marketplace, or all")
    return {"permissions": permissions, "marketplaces": sorted(set(codes))}


def _values(form: dict[str, Any], name: str) -> list[str]:
    value = form.get(name, [])
    items = value if isinstance(value, list) else [value]
    return [str(v) for v in items if str(v).strip()]


def reply_body(text: str | None) -> str:
    body = (text or "").strip()
    if not body:
        raise FormError("body", "write a reply first")
    if len(body) > 10_000:
        raise FormError("body", "at most 10,000 characters")
    return body


# -- billing: what the cap saved ----------------------------------------------------------------------------
@dataclass(slots=True)
class Savings:
    currency: str
    fees: Decimal = Decimal(0)
    charged: Decimal = Decimal(0)
    credited: Decimal = Decimal(0)

    @property
    def saved(self) -> Decimal:
        return self.fees - self.charged + self.credited


@dataclass(slots=True)
class YearSavings:
    year: int
    by_currency: list[Savings] = field(default_factory=list)


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def cap_savings(invoices: dict[str, Any], year: int) -> YearSavings:
    """Per currency, over the year's periods: plan fees without the cap (sum of line fees), what the invoices
    charged, and credit notes given back; saved = fees - charged + credited."""
    totals: dict[str, Savings] = defaultdict(lambda: Savings(""))
    prefix = f"{year:04d}-"
    for doc in invoices.get("invoices", []):
        if not str(doc.get("period", "")).startswith(prefix):
            continue
        s = totals[doc["currency"]]
        s.currency = doc["currency"]
        for line in doc.get("lines", []):
            s.charged += _dec(line.get("amount"))
            if doc.get("kind", "invoice") == "invoice":
                s.fees += _dec(line.get("fee"))
    for note in invoices.get("credit_notes", []):
        if str(note.get("period", "")).startswith(prefix):
            s = totals[note["currency"]]
            s.currency = note["currency"]
            s.credited += abs(_dec(note.get("total")))
    return YearSavings(year, [totals[c] for c in sorted(totals)])


def periods_and_currencies(invoices: dict[str, Any]) -> tuple[list[str], list[str]]:
    docs = invoices.get("invoices", []) + invoices.get("credit_notes", [])
    return sorted({str(d["period"]) for d in docs}, reverse=True), sorted({str(d["currency"]) for d in docs})


# -- the overview chart ------------------------------------------------------------------------------------
# How far back the chart looks, per granularity (seller_view answers at most 400 buckets).
CHART_SPAN = {"day": timedelta(days=89), "week": timedelta(weeks=25), "month": timedelta(days=365)}


def chart_range(granularity: str, today: date) -> tuple[date, date]:
    """The chart's purchase days, both included: 90 days, 26 weeks or 12 months up to today."""
    start = today - CHART_SPAN[granularity]
    if granularity == "month":
        start = start.replace(day=1)
    return start, today


def chart_series(timeseries: dict[str, Any]) -> dict[str, Any]:
    """Labels (bucket starts) and one dataset of sales per marketplace, for the chart and the table beside it,
    from seller_view's time series (every bucket lists every marketplace, zeros included)."""
    codes = [str(m.get("code")) for m in timeseries.get("marketplaces", [])]
    labels: list[str] = []
    values: dict[str, list[str]] = {code: [] for code in codes}
    provisional = 0
    for bucket in timeseries.get("buckets", []):
        labels.append(str(bucket.get("start")))
        points = {str(p.get("marketplace")): p for p in bucket.get("marketplaces", [])}
        for code in codes:
            point = points.get(code, {})
            values[code].append(str(point.get("sales", "0")))
            provisional += int(point.get("provisional_orders", 0) or 0)
    datasets = [{"label": code, "data": values[code]} for code in codes]
    return {"labels": labels, "datasets": datasets, "provisional_orders": provisional}
