"""What a target offer should be, and which event says so: pure decisions, no I/O.

The handlers load the source offers, links, participations, rates and the target offers as they stand, ask
``desired_target`` what each target should be and ``change_of`` whether that is news, then write and publish.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from unified_listings.pricing import Rule, conversion_factor, target_price
from unified_shared.catalog import by_id
from unified_shared.contracts.listings import Clamp, TargetRule

FX_BASE = "EUR"


@dataclass(frozen=True, slots=True)
class SourceOffer:
    """An own offer that links can copy: what a target price is computed from."""

    account_id: UUID
    sku: str
    marketplace_id: str
    currency: str
    price: Decimal
    quantity: int
    status: str


@dataclass(frozen=True, slots=True)
class TargetOffer:
    """A linked offer as stored."""

    account_id: UUID
    sku: str
    marketplace_id: str
    price: Decimal | None
    status: str
    source_price: Decimal | None
    fx_rate: Decimal | None
    fx_rate_date: dt.date | None
    rule: dict[str, Any] | None
    version: int


@dataclass(frozen=True, slots=True)
class RateBook:
    """The latest FX publication: units per EUR."""

    date: dt.date
    revision: int
    source: str
    rates: Mapping[str, Decimal]

    def rate(self, currency: str) -> Decimal | None:
        if currency == FX_BASE:
            return Decimal(1)
        value = self.rates.get(currency)
        return value if value is not None and value > 0 else None


@dataclass(frozen=True, slots=True)
class Price:
    """What a target offer should cost, and the rate, rule and clamp that made it (the event says all of it)."""

    price: Decimal
    clamped: Clamp | None
    fx_rate: Decimal
    fx_rate_date: dt.date | None
    fx_source: str | None
    manual: bool


@dataclass(frozen=True, slots=True)
class Stop:
    """A target offer that should stop selling, and why (e.g. its marketplace closed)."""

    reason: str


Desired = Price | Stop


def rule_of(target: TargetRule) -> Rule:
    return Rule(target.currency, target.percent, target.fixed, target.ending, target.floor, target.ceiling)


def conversion(
    source_currency: str, target_currency: str, rates: RateBook | None
) -> tuple[Decimal, RateBook | None] | str:
    """The factor (target units per source unit) and the publication it came from, or why there is none."""
    if source_currency == target_currency:
        return Decimal(1), None
    if rates is None:
        return "conversion unavailable: no FX rates published yet"
    source_rate, target_rate = rates.rate(source_currency), rates.rate(target_currency)
    for currency, rate in ((source_currency, source_rate), (target_currency, target_rate)):
        if rate is None:
            return f"conversion unavailable: no {currency} rate (source {rates.source}, {rates.date.isoformat()})"
    assert source_rate is not None and target_rate is not None
    return conversion_factor(source_rate, target_rate), rates


def desired_target(source: SourceOffer, target: TargetRule, *, sells: bool, rates: RateBook | None) -> Desired:
    """What the target offer of ``source`` in ``target.marketplace_id`` should be now."""
    code = by_id(target.marketplace_id).code
    if not sells:
        return Stop(f"{code} is not open with active listings")
    if source.status != "Active":
        return Stop("the source offer is not active")
    if source.sku in target.excluded_skus:
        return Stop("SKU excluded from the link")
    converted = conversion(source.currency, target.currency, rates)
    if isinstance(converted, str):
        manual_only = target.manual_prices.get(source.sku)
        if manual_only is not None:
            return Price(manual_only, None, Decimal(0), None, None, True)
        return Stop(converted)
    factor, book = converted
    fx_date, fx_source = (book.date, book.source) if book else (None, None)
    manual = target.manual_prices.get(source.sku)
    if manual is not None:
        return Price(manual, None, factor, fx_date, fx_source, True)
    priced = target_price(source.price, factor, rule_of(target))
    return Price(priced.price, priced.clamped, factor, fx_date, fx_source, False)


def change_of(current: TargetOffer | None, desired: Desired, source_price: Decimal, rule: dict[str, Any]) -> bool:
    """Whether ``desired`` is news: a price, rate, rate day, source price or rule that differs, a stop of a live
    offer. The rate on its own counts: a corrected FX day (same date, next revision) that leaves the price as it
    was must still leave the offer naming the rate it is priced at now."""
    if isinstance(desired, Stop):
        return current is not None and current.status != "Stopped"
    if current is None or current.status != "Active":
        return True
    return (
        current.price != desired.price
        or current.fx_rate != desired.fx_rate
        or current.fx_rate_date != desired.fx_rate_date
        or current.source_price != source_price
        or current.rule != rule
    )
