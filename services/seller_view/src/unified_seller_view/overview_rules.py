"""Pure rules of the overview: no I/O. Converting sales at the day's FX rates and summing them per marketplace.

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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any
from uuid import UUID

from unified_shared.money import UnknownCurrency, quantum

BASE_CURRENCY = "EUR"
NOT_A_SALE = frozenset({"Canceled"})

# -- FX conversion and the overview -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverviewQuery:
    """One overview question: whose orders, summed in which currency, over which marketplaces (None: all) and
    purchase window. Passed whole from the API through every layer of the read side."""

    account_id: UUID
    reporting_currency: str
    marketplaces: list[str] | None = None
    purchased_after: datetime | None = None
    purchased_before: datetime | None = None


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
        """Add ``other`` to these sums: every count and amount added, every per-status or per-currency map
        merged key by key (a time series adds a few hundred of these per answer: the names are listed once)."""
        for name in _FIGURE_MAPS:
            mine = getattr(self, name)
            for key, value in getattr(other, name).items():
                mine[key] = mine.get(key, 0) + value
        for name in _FIGURE_SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

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


# Figures' fields by how absorb adds them: maps merged key by key, counts and amounts added.
_FIGURE_MAPS = tuple(f.name for f in fields(Figures) if f.default_factory is dict)
_FIGURE_SUMS = tuple(f.name for f in fields(Figures) if f.default_factory is not dict)


@dataclass(slots=True)
class Overview:
    reporting_currency: str
    marketplaces: dict[str, Figures]
    total: Figures
    rates_used: dict[tuple[str, date], Rate]  # (currency, purchase day) -> rate used
    rates_listed: list[dict[str, Any]] | None = None  # rates_used_json's list, when the SQL made it already


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
