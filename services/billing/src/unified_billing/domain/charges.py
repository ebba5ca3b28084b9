"""The capped-fee rule (DESIGN section 7): month one is the home marketplace's fee under the cap; every later
month each billable line pays its fee, scaled down exactly when their sum exceeds the cap."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction

from unified_billing.domain.periods import ONE, RATIO_PLACES, ZERO, Held, Period
from unified_billing.domain.rates import (
    FeeRow,
    RatePublication,
    RateSnapshot,
    conversion_factor,
    fees_in_force,
    select_rates,
)
from unified_billing.domain.timeline import Fact, billable_marketplaces, first_subscription_period
from unified_shared.catalog import UnknownMarketplace, by_id
from unified_shared.money import minor_units, round_down


# -- charges --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Cap:
    """The most an account pays in a period across its marketplaces (DESIGN section 7), in its currency."""

    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class ChargeLine:
    """One marketplace's line of a period's charges: its fee, what it pays after the cap and the rates used."""

    marketplace_id: str
    currency: str
    fee: Decimal
    ratio: Decimal
    amount: Decimal
    discount: Decimal
    fx_rate_date: dt.date | None = None
    fx_rate_source: str | None = None
    fx_rate: Decimal | None = None  # ECB rate: units of the line's currency per EUR
    fx_to_cap: Decimal | None = None  # units of the cap currency per unit of the line's currency
    description: str = ""


@dataclass(frozen=True, slots=True)
class FeeAt:
    """A billable marketplace and its fee in force on the period's last day."""

    marketplace_id: str
    currency: str
    fee: Decimal


def _fx_fields(currency: str, cap: Cap, rates: RateSnapshot | None) -> dict[str, object]:
    if rates is None:
        return {"fx_to_cap": ONE if currency == cap.currency else None}
    return {
        "fx_rate_date": rates.date,
        "fx_rate_source": rates.source,
        "fx_rate": rates.rate(currency),
        "fx_to_cap": ONE
        if currency == cap.currency
        else conversion_factor(currency, cap.currency, rates).quantize(
            Decimal(1).scaleb(-RATIO_PLACES), rounding=ROUND_DOWN
        ),
    }


def _exact_value_in(amount: Decimal, currency: str, target: str, rates: RateSnapshot | None) -> Fraction:
    """x / rate(C) x rate(T) as an exact rational: no rounding at all."""
    if currency == target:
        return Fraction(amount)
    if rates is None:
        raise Held(f"FX rates needed to convert {currency} to {target}")
    return Fraction(amount) * Fraction(rates.rate(target)) / Fraction(rates.rate(currency))


def _floor_to_minor_unit(value: Fraction, currency: str) -> Decimal:
    """Round an exact non-negative amount down to the currency's minor unit (the one and only rounding)."""
    places = minor_units(currency)
    units = math.floor(value * 10**places)
    return Decimal(units).scaleb(-places)


def _line_value(fee: FeeAt, cap: Cap, rates: RateSnapshot | None) -> Fraction:
    """U_i of one line; a line whose currency has no rate holds the period naming that marketplace (EGP has no
    ECB reference rate: without a configured source its line, and so S, cannot be known)."""
    try:
        return _exact_value_in(fee.fee, fee.currency, cap.currency, rates)
    except Held as exc:
        code = _marketplace_code(fee.marketplace_id)
        raise Held(f"{code} line ({fee.fee} {fee.currency}) held: {exc}") from None


def _marketplace_code(marketplace_id: str) -> str:
    try:
        return by_id(marketplace_id).code
    except UnknownMarketplace:
        return marketplace_id


def capped_charges(fees: Sequence[FeeAt], cap: Cap, rates: RateSnapshot | None) -> list[ChargeLine]:
    """Every later period: each pays F_i, or F_i x r (r = cap / S, S = sum of U_i) rounded down when S > cap.

    S, the comparison with the cap and each F_i x cap / S are exact (rationals of the Decimal inputs), and
    the only rounding is the final one down to the minor unit: a line is never one unit lower than the rule
    says, and the lines' total never exceeds the cap. The ratio on the lines is r truncated to
    ``RATIO_PLACES`` decimals, for display only.
    """
    if not fees:
        return []
    needs_fx = any(f.currency != cap.currency for f in fees)
    snapshot = rates if needs_fx else None
    if needs_fx and rates is None:
        raise Held("FX rates of the period's last day are needed and none were found")
    total = sum((_line_value(f, cap, snapshot) for f in fees), Fraction(0))
    capped = total > Fraction(cap.amount)
    exact_ratio = Fraction(cap.amount) / total if capped else Fraction(1)
    ratio = _display_ratio(exact_ratio) if capped else ONE
    lines = []
    for f in fees:
        amount = _floor_to_minor_unit(Fraction(f.fee) * exact_ratio, f.currency) if capped else f.fee
        lines.append(_charge_line(f, ratio, amount, cap=cap, rates=snapshot))
    return lines


def _charge_line(
    fee: FeeAt, ratio: Decimal, amount: Decimal, *, cap: Cap, rates: RateSnapshot | None, description: str = ""
) -> ChargeLine:
    """The line of ``fee`` paying ``amount`` (the discount is what the cap takes off), with the rates used."""
    return ChargeLine(
        marketplace_id=fee.marketplace_id,
        currency=fee.currency,
        fee=fee.fee,
        ratio=ratio,
        amount=amount,
        discount=fee.fee - amount,
        description=description,
        **_fx_fields(fee.currency, cap, rates),  # type: ignore[arg-type]
    )


def _display_ratio(ratio: Fraction) -> Decimal:
    """r truncated to ``RATIO_PLACES`` decimals: what the line shows (amounts use the exact r)."""
    scale = 10**RATIO_PLACES
    return Decimal(math.floor(ratio * scale)).scaleb(-RATIO_PLACES)


def first_period_charge(home: FeeAt, cap: Cap, rates: RateSnapshot | None) -> ChargeLine:
    """Month one: the home marketplace's fee, but never more than the cap converted into its currency
    (at the rates of the period's last day, rounded down to the minor unit)."""
    snapshot = rates if home.currency != cap.currency else None
    if home.currency == cap.currency:
        cap_local = cap.amount
    else:
        if rates is None:
            raise Held("FX rates of the period's last day are needed and none were found")
        with localcontext() as ctx:
            ctx.prec = 50
            ctx.rounding = ROUND_FLOOR
            cap_local = round_down(cap.amount * rates.rate(home.currency) / rates.rate(cap.currency), home.currency)
    amount = min(home.fee, cap_local)
    if amount == home.fee:
        ratio = ONE
    else:
        with localcontext() as ctx:
            ctx.rounding = ROUND_FLOOR
            ratio = (amount / home.fee).quantize(Decimal(1).scaleb(-RATIO_PLACES), rounding=ROUND_DOWN)
    return _charge_line(home, ratio, amount, cap=cap, rates=snapshot, description="first period: home marketplace only")


@dataclass(frozen=True, slots=True)
class PeriodCharges:
    """What is due for one account and period (empty lines: nothing billable)."""

    period: Period
    lines: tuple[ChargeLine, ...]
    first_period: bool = False
    billable: tuple[str, ...] = ()

    def by_currency(self) -> dict[str, list[ChargeLine]]:
        out: dict[str, list[ChargeLine]] = {}
        for line in self.lines:
            out.setdefault(line.currency, []).append(line)
        return out


def currency_of(marketplace_id: str) -> str:
    try:
        return by_id(marketplace_id).currency
    except UnknownMarketplace:
        raise Held(f"unknown marketplace {marketplace_id}") from None


def compute_period(
    period: Period,
    facts: Sequence[Fact],
    *,
    home_marketplace_id: str | None,
    schedule: Sequence[FeeRow],
    publications: Sequence[RatePublication],
    cap: Cap,
    as_of: dt.date | None = None,
    final: bool = True,
) -> PeriodCharges:
    """The charges of ``period``: billable marketplaces, then the month-one rule or the capped rule.

    ``as_of`` (preview of an open period): only days up to it count, and fees and rates are those of that
    day; ``final=False`` then accepts the latest rates without waiting for the day's own. Raises Held.
    """
    last_day = min(period.last_day, as_of) if as_of else period.last_day
    first = first_subscription_period(facts)
    if first is None or period < first:
        return PeriodCharges(period, ())
    fee_rows = fees_in_force(schedule, last_day)
    fees = {mp: row.fee for mp, row in fee_rows.items()}
    billable = billable_marketplaces(facts, period.first_day, last_day, fees)
    if not billable:
        return PeriodCharges(period, (), first_period=period == first)

    def rates_if_needed(currencies: Iterable[str]) -> RateSnapshot | None:
        if all(c == cap.currency for c in currencies):
            return None
        return select_rates(publications, last_day, final=final)

    if period == first:
        if home_marketplace_id is None:
            raise Held("home marketplace unknown (no AccountRegistered event received yet)")
        home_row = fee_rows.get(home_marketplace_id)
        if home_row is None:
            raise Held(f"no fee in force for home marketplace {home_marketplace_id} on {last_day.isoformat()}")
        if home_row.fee <= ZERO:
            return PeriodCharges(period, (), first_period=True, billable=tuple(billable))
        home = FeeAt(home_marketplace_id, home_row.currency, home_row.fee)
        line = first_period_charge(home, cap, rates_if_needed([home.currency]))
        return PeriodCharges(period, (line,), first_period=True, billable=tuple(billable))

    items = [FeeAt(mp, fee_rows[mp].currency, fee_rows[mp].fee) for mp in billable]
    for item in items:
        if item.currency != currency_of(item.marketplace_id):
            raise Held(f"fee of {item.marketplace_id} is in {item.currency}, its marketplace bills in another currency")
    lines = capped_charges(items, cap, rates_if_needed([i.currency for i in items]))
    return PeriodCharges(period, tuple(lines), billable=tuple(billable))
