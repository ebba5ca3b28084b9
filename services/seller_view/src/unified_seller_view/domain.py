"""Pure rules of the unified view: no I/O. Folding participations, converting sales, reply deadlines and
late-response rates, and the opaque keyset page token.

Rules decided here (and documented in the README):
- Gross sales = sum of OrderTotal over orders whose status is not Canceled (a canceled order never was a
  sale). Refunds are NOT subtracted from gross sales; they are reported apart, and net sales = gross sales
  minus refunds. Canceled orders count in ``orders_by_status`` but in nothing else (units, sales, refunds).
- Conversion: every order (and its refunds) is converted at the rates of its purchase date (UTC day): for each
  currency, the last rate published on or before that day (latest revision). reporting amount =
  amount x rate(reporting) / rate(local), rates being units per 1 EUR (EUR itself is 1), rounded half-even to
  the reporting currency's minor unit **per order**. A marketplace's amount is the sum of its orders' rounded
  amounts, and the total is the sum of the marketplaces' amounts, so total == sum of parts exactly.
- An order whose currency (or the reporting currency) has no rate on or before its day is not converted: its
  local amount is reported under ``unconverted`` and the marketplace is marked partial/none.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any, Literal

from unified_shared import catalog
from unified_shared.bounds import check_line, check_query_instant, cursor_json
from unified_shared.money import UnknownCurrency, quantum

BASE_CURRENCY = "EUR"
REPLY_DEADLINE = timedelta(hours=24)
DUE_SOON = timedelta(hours=4)
LATE_RATE_WINDOWS_DAYS = (7, 30, 90)
NOT_A_SALE = frozenset({"Canceled"})

# -- participations ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParticipationChange:
    event_type: str  # the contract NAME, e.g. "ParticipationOpened"
    at: datetime
    sequence: int | None
    event_id: str
    reason: str | None = None


@dataclass(slots=True)
class ParticipationState:
    participation: str = "none"  # none | open | suspended | closed
    subscription: str = "none"  # none | active | ended
    listings: str = "inactive"  # active | inactive
    opened_at: datetime | None = None
    subscribed_since: datetime | None = None
    last_change_at: datetime | None = None
    suspended_reason: str | None = None


def fold_participation(changes: Iterable[ParticipationChange]) -> ParticipationState:
    """Current state from every change in effective-time order (late, backdated events land in place)."""
    state = ParticipationState()
    ordered = sorted(changes, key=lambda c: (c.at, c.sequence if c.sequence is not None else 0, c.event_id))
    for c in ordered:
        kind = c.event_type
        if kind == "ParticipationOpened":
            state.participation = "open"
            state.opened_at = state.opened_at or c.at
            state.suspended_reason = None
        elif kind == "ParticipationSuspended":
            state.participation = "suspended"
            state.suspended_reason = c.reason
        elif kind == "ParticipationReinstated":
            state.participation = "open"
            state.suspended_reason = None
        elif kind == "ParticipationClosed":
            state.participation = "closed"
        elif kind == "SubscriptionStarted":
            if state.subscription != "active":
                state.subscribed_since = c.at
            state.subscription = "active"
        elif kind == "SubscriptionEnded":
            state.subscription = "ended"
        elif kind == "ListingsActivated":
            state.listings = "active"
        elif kind == "ListingsDeactivated":
            state.listings = "inactive"
        state.last_change_at = c.at
    return state


# -- FX conversion and the overview -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    """Units of ``currency`` per 1 EUR, as published for ``date`` (the day actually used)."""

    currency: str
    date: date | None  # None for EUR itself (the base: always 1)
    rate: Decimal
    revision: int | None = None
    source: str | None = None


RateLookup = Callable[[str, date], Rate | None]


def base_rate() -> Rate:
    return Rate(BASE_CURRENCY, None, Decimal(1))


def minor(currency: str) -> Decimal:
    """The currency's minor unit, or cents for a code ISO 4217 does not know (never fails a whole view)."""
    try:
        return quantum(currency)
    except UnknownCurrency:
        return Decimal("0.01")


def convert(amount: Decimal, local: Rate, reporting: Rate, reporting_currency: str) -> Decimal:
    """amount x rate(reporting) / rate(local), rounded half-even to the reporting currency's minor unit."""
    with localcontext() as ctx:
        ctx.prec = 34
        exact = amount * reporting.rate / local.rate
    return exact.quantize(minor(reporting_currency), rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class OrderFigures:
    """What the overview needs of one order; ``refunds`` are (currency, amount) pairs."""

    marketplace_id: str
    status: str
    currency: str
    amount: Decimal
    units: int
    purchase_day: date
    refunds: tuple[tuple[str, Decimal], ...] = ()


def _add(bucket: dict[str, Decimal], currency: str, amount: Decimal) -> None:
    bucket[currency] = bucket.get(currency, Decimal(0)) + amount


def _money_map(bucket: dict[str, Decimal]) -> dict[str, str]:
    return {c: format(bucket[c].quantize(minor(c)), "f") for c in sorted(bucket)}


@dataclass(slots=True)
class Figures:
    """Sums for one marketplace or for the total. Reporting amounts are sums of per-order rounded values."""

    orders: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    units: int = 0
    gross_local: dict[str, Decimal] = field(default_factory=dict)
    refunds_local: dict[str, Decimal] = field(default_factory=dict)
    gross_reporting: Decimal = Decimal(0)
    refunds_reporting: Decimal = Decimal(0)
    converted_orders: int = 0
    unconverted_orders: int = 0
    unconverted_gross: dict[str, Decimal] = field(default_factory=dict)
    unconverted_refunds: dict[str, Decimal] = field(default_factory=dict)
    provisional_orders: int = 0  # converted at a rate older than their day, whose own rate may still come
    provisional_refunds: int = 0

    def absorb(self, other: Figures) -> None:
        self.orders += other.orders
        for status, n in other.by_status.items():
            self.by_status[status] = self.by_status.get(status, 0) + n
        self.units += other.units
        for c, a in other.gross_local.items():
            _add(self.gross_local, c, a)
        for c, a in other.refunds_local.items():
            _add(self.refunds_local, c, a)
        self.gross_reporting += other.gross_reporting
        self.refunds_reporting += other.refunds_reporting
        self.converted_orders += other.converted_orders
        self.unconverted_orders += other.unconverted_orders
        for c, a in other.unconverted_gross.items():
            _add(self.unconverted_gross, c, a)
        for c, a in other.unconverted_refunds.items():
            _add(self.unconverted_refunds, c, a)
        self.provisional_orders += other.provisional_orders
        self.provisional_refunds += other.provisional_refunds

    def conversion(self) -> str:
        if self.unconverted_orders == 0:
            return "provisional" if self.provisional_orders or self.provisional_refunds else "complete"
        return "none" if self.converted_orders == 0 else "partial"

    def to_json(self, reporting_currency: str) -> dict[str, Any]:
        q = minor(reporting_currency)
        net_local = dict(self.gross_local)
        for c, a in self.refunds_local.items():
            _add(net_local, c, -a)
        return {
            "orders": self.orders,
            "orders_by_status": dict(sorted(self.by_status.items())),
            "units": self.units,
            "gross_sales": {
                "local": _money_map(self.gross_local),
                "reporting": format(self.gross_reporting.quantize(q), "f"),
            },
            "refunds": {
                "local": _money_map(self.refunds_local),
                "reporting": format(self.refunds_reporting.quantize(q), "f"),
            },
            "net_sales": {
                "local": _money_map(net_local),
                "reporting": format((self.gross_reporting - self.refunds_reporting).quantize(q), "f"),
            },
            "conversion": self.conversion(),
            "provisional": {"orders": self.provisional_orders, "refunds": self.provisional_refunds},
            "unconverted": {
                "orders": self.unconverted_orders,
                "gross_sales": _money_map(self.unconverted_gross),
                "refunds": _money_map(self.unconverted_refunds),
            },
        }


@dataclass(slots=True)
class Overview:
    reporting_currency: str
    marketplaces: dict[str, Figures]
    total: Figures
    rates_used: dict[tuple[str, date], Rate]  # (currency, purchase day) -> rate used


def _rate_for(currency: str, day: date, lookup: RateLookup) -> Rate | None:
    return base_rate() if currency == BASE_CURRENCY else lookup(currency, day)


def is_provisional(currency: str, reporting_currency: str, day: date, latest_rate_day: date | None) -> bool:
    """A conversion is provisional when it needed a rate and no rates are published yet for its day or later:
    the day's own rate may still come (a weekend's rate is final once the next working day is published)."""
    return currency != reporting_currency and latest_rate_day is not None and day > latest_rate_day


def build_overview(
    orders: Iterable[OrderFigures],
    reporting_currency: str,
    lookup: RateLookup,
    latest_rate_day: date | None = None,
) -> Overview:
    """Aggregate orders per marketplace and in total, converting each order at its purchase day's rates."""
    per_market: dict[str, Figures] = {}
    used: dict[tuple[str, date], Rate] = {}
    for o in orders:
        fig = per_market.setdefault(o.marketplace_id, Figures())
        fig.orders += 1
        fig.by_status[o.status] = fig.by_status.get(o.status, 0) + 1
        if o.status in NOT_A_SALE:
            continue
        fig.units += o.units
        _add(fig.gross_local, o.currency, o.amount)
        for currency, amount in o.refunds:
            _add(fig.refunds_local, currency, amount)
        amounts = [(o.currency, o.amount, True), *((c, a, False) for c, a in o.refunds)]
        converted: list[tuple[Decimal, bool]] = []
        complete = True
        for currency, amount, is_gross in amounts:
            if currency == reporting_currency:
                converted.append((amount.quantize(minor(reporting_currency), rounding=ROUND_HALF_EVEN), is_gross))
                continue
            local = _rate_for(currency, o.purchase_day, lookup)
            target = _rate_for(reporting_currency, o.purchase_day, lookup)
            if local is None or target is None:
                complete = False
                break
            for r in (local, target):
                if r.date is not None:
                    used[(r.currency, o.purchase_day)] = r
            converted.append((convert(amount, local, target, reporting_currency), is_gross))
        if not complete:
            fig.unconverted_orders += 1
            _add(fig.unconverted_gross, o.currency, o.amount)
            for currency, amount in o.refunds:
                _add(fig.unconverted_refunds, currency, amount)
            continue
        fig.converted_orders += 1
        if is_provisional(o.currency, reporting_currency, o.purchase_day, latest_rate_day):
            fig.provisional_orders += 1
        fig.provisional_refunds += sum(
            1 for c, _ in o.refunds if is_provisional(c, reporting_currency, o.purchase_day, latest_rate_day)
        )
        for value, is_gross in converted:
            if is_gross:
                fig.gross_reporting += value
            else:
                fig.refunds_reporting += value
    total = Figures()
    for fig in per_market.values():
        total.absorb(fig)
    return Overview(reporting_currency, per_market, total, used)


def rates_used_json(used: dict[tuple[str, date], Rate]) -> list[dict[str, Any]]:
    """Distinct rates the overview used: which day's rate served which purchase days."""
    grouped: dict[tuple[str, date | None], tuple[Rate, list[date]]] = {}
    for (currency, day), rate in used.items():
        entry = grouped.setdefault((currency, rate.date), (rate, []))
        entry[1].append(day)
    out = []
    for (currency, rate_date), (rate, days) in sorted(grouped.items(), key=lambda kv: (kv[0][0], kv[0][1] or date.min)):
        out.append(
            {
                "currency": currency,
                "per": BASE_CURRENCY,
                "rate": format(rate.rate, "f"),
                "rate_date": rate_date.isoformat() if rate_date else None,
                "revision": rate.revision,
                "source": rate.source,
                "used_for_purchase_days": [d.isoformat() for d in sorted(days)],
            }
        )
    return out


# -- buyer messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cycle:
    """One wait for a reply in one thread."""

    thread_id: str
    marketplace_id: str
    started_at: datetime
    deadline: datetime
    closed_at: datetime | None
    closed_by: str | None


def deadline_for(first_unanswered_at: datetime) -> datetime:
    return first_unanswered_at + REPLY_DEADLINE


EntryKind = Literal["buyer", "reply", "mark"]
# The messages service's rule: at the same instant a buyer message comes first (a reply stamped with the same
# time answers it); a reply and a mark at the same instant are ordered by their IDs.
_KIND_ORDER: dict[str, int] = {"buyer": 0, "reply": 1, "mark": 1}


@dataclass(frozen=True, slots=True)
class ThreadEntry:
    """One point of a thread's timeline: a buyer message, a seller reply or a "no response needed" mark."""

    kind: EntryKind
    entry_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Wait:
    """One wait for a reply as the timeline gives it: opened by a buyer message, closed (or not yet)."""

    opened_by: str
    started_at: datetime
    deadline: datetime
    closed_at: datetime | None
    closed_by: Literal["reply", "no_response"] | None


def mark_entry_id(thread_id: str, at: datetime) -> str:
    """The messages service's ID of a mark (the event carries none): the same thread and instant, the same mark."""
    return f"mark:{thread_id}:{at.astimezone(UTC).isoformat()}"


def reply_waits(entries: Iterable[ThreadEntry]) -> list[Wait]:
    """The thread's waits from its whole timeline in time order (ties: buyer first, then by ID), so the
    result does not depend on the order the entries arrived in: a wait starts at the first unanswered buyer
    message and ends at the first reply or mark at or after it; a mark with nothing waiting changes nothing."""
    timeline = sorted(entries, key=lambda e: (e.at, _KIND_ORDER[e.kind], e.entry_id))
    waits: list[Wait] = []
    opened: ThreadEntry | None = None
    for entry in timeline:
        if entry.kind == "buyer":
            if opened is None:
                opened = entry
        elif opened is not None:
            closed_by: Literal["reply", "no_response"] = "reply" if entry.kind == "reply" else "no_response"
            waits.append(Wait(opened.entry_id, opened.at, deadline_for(opened.at), entry.at, closed_by))
            opened = None
    if opened is not None:
        waits.append(Wait(opened.entry_id, opened.at, deadline_for(opened.at), None, None))
    return waits


def awaiting_at(cycle: Cycle, as_of: datetime) -> bool:
    return cycle.started_at <= as_of and (cycle.closed_at is None or cycle.closed_at > as_of)


def classify(cycle: Cycle, as_of: datetime) -> str:
    """For a thread awaiting a reply at ``as_of``: overdue (more than 24 h since its first unanswered
    buyer message), due_soon (deadline within the next 4 h, deadline included) or on_track."""
    if as_of > cycle.deadline:
        return "overdue"
    if cycle.deadline - as_of <= DUE_SOON:
        return "due_soon"
    return "on_track"


def is_late(cycle: Cycle) -> bool:
    """Answered (reply or "no response needed") after its deadline, or never answered."""
    return cycle.closed_at is None or cycle.closed_at > cycle.deadline


@dataclass(frozen=True, slots=True)
class LateRate:
    days: int
    window_start: datetime
    window_end: datetime
    due: int
    late: int

    @property
    def rate(self) -> Decimal | None:
        if self.due == 0:
            return None
        return (Decimal(self.late) / Decimal(self.due)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)

    def to_json(self) -> dict[str, Any]:
        rate = self.rate
        return {
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "threads_due": self.due,
            "late": self.late,
            "rate": format(rate, "f") if rate is not None else None,
        }


def late_response_rate(cycles: Iterable[Cycle], as_of: datetime, days: int) -> LateRate:
    """Over waits whose deadline fell in (as_of - days, as_of]: the share answered after the deadline or
    still unanswered. A wait answered after ``as_of`` counts as it stood at ``as_of``: unanswered, so late."""
    start = as_of - timedelta(days=days)
    due = late = 0
    for c in cycles:
        if start < c.deadline <= as_of:
            due += 1
            if c.closed_at is None or c.closed_at > c.deadline:
                late += 1
    return LateRate(days, start, as_of, due, late)


# -- scope ------------------------------------------------------------------------------------------


def normalize_marketplaces(refs: Iterable[str]) -> list[str]:
    """Marketplace IDs from IDs or codes ("UK" and "GB" both mean the UK store); raises UnknownMarketplace."""
    out: list[str] = []
    for ref in refs:
        for part in ref.split(","):
            if part.strip():
                mid = catalog.resolve(part).marketplace_id
                if mid not in out:
                    out.append(mid)
    return out


def visible_marketplaces(scope: Any, requested: Sequence[str] | None = None) -> list[str] | None:
    """Marketplace IDs the caller may see (None = all) narrowed to ``requested`` when given."""
    allowed: list[str] | None
    if scope == "*":
        allowed = None
    else:
        allowed = []
        for ref in scope:
            try:
                allowed.extend(m for m in normalize_marketplaces([ref]) if m not in allowed)
            except catalog.UnknownMarketplace:
                continue  # a scope entry this view does not know covers nothing
    if requested is None:
        return allowed
    if allowed is None:
        return list(requested)
    return [m for m in requested if m in allowed]


# -- page tokens ------------------------------------------------------------------------------------


class BadPageToken(ValueError):
    pass


def filters_fingerprint(filters: dict[str, Any]) -> str:
    raw = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode_page_token(purchase_date: datetime, amazon_order_id: str, filters: dict[str, Any]) -> str:
    """Opaque keyset token: the last row's sort key plus a fingerprint of the filters it belongs to."""
    body = {"d": purchase_date.isoformat(), "o": amazon_order_id, "f": filters_fingerprint(filters)}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_page_token(token: str, filters: dict[str, Any]) -> tuple[datetime, str]:
    try:
        body = cursor_json(token)  # refuses NaN/Infinity
        when = check_query_instant(datetime.fromisoformat(body["d"]))
        order_id = check_line(str(body["o"]))
        fingerprint = body["f"]
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise BadPageToken("NextToken is not valid") from exc
    if when.tzinfo is None:
        raise BadPageToken("NextToken is not valid")
    if fingerprint != filters_fingerprint(filters):
        raise BadPageToken("NextToken belongs to a request with other filters")
    return when, order_id
