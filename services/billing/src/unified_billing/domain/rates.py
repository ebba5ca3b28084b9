"""The fee schedule (a fee change is a new row) and FX publications (ECB euro reference rates)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from unified_billing.domain.periods import FX_BASE, ONE, ZERO, Held


# -- fee schedule ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FeeRow:
    """One row of the fee schedule: from ``effective_from`` on, the plan fee is ``fee`` (until a newer row)."""

    row_id: int
    marketplace_id: str
    currency: str
    fee: Decimal
    effective_from: dt.date


def fee_in_force(schedule: Iterable[FeeRow], marketplace_id: str, day: dt.date) -> FeeRow | None:
    """The newest row effective on or before ``day`` (a later-added row wins a tie)."""
    candidates = [r for r in schedule if r.marketplace_id == marketplace_id and r.effective_from <= day]
    return max(candidates, key=lambda r: (r.effective_from, r.row_id), default=None)


def fees_in_force(schedule: Sequence[FeeRow], day: dt.date) -> dict[str, FeeRow]:
    rows = {}
    for mp in {r.marketplace_id for r in schedule}:
        row = fee_in_force(schedule, mp, day)
        if row is not None:
            rows[mp] = row
    return rows


# -- FX -------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RatePublication:
    """One day of ECB euro reference rates (units of a currency per 1 EUR), one revision."""

    date: dt.date
    revision: int
    rates: Mapping[str, Decimal]
    source: str


@dataclass(frozen=True, slots=True)
class RateSnapshot:
    """The rates used for a period: one publication, plus EUR itself (1 per EUR)."""

    date: dt.date
    source: str
    rates: Mapping[str, Decimal]

    def rate(self, currency: str) -> Decimal:
        if currency == FX_BASE:
            return ONE
        rate = self.rates.get(currency)
        if rate is None or rate <= ZERO:
            raise Held(f"no {currency} rate in the FX publication of {self.date.isoformat()} ({self.source})")
        return rate


def _is_weekend(day: dt.date) -> bool:
    return day.weekday() >= 5


def select_rates(publications: Iterable[RatePublication], day: dt.date, *, final: bool = True) -> RateSnapshot:
    """The last rates published on or before ``day`` (highest revision of that date).

    ``final``: the choice must be settled, i.e. the publication is of ``day`` itself, or every day after
    it up to ``day`` is a weekend (ECB publishes none), or a later publication exists (so none will come
    for the days in between). Otherwise the rate of ``day`` may still arrive: raise Held, never guess.
    """
    pubs = list(publications)
    on_or_before = [p for p in pubs if p.date <= day]
    if not on_or_before:
        raise Held(f"no FX rates published on or before {day.isoformat()} (none in the days looked back on)")
    latest_date = max(p.date for p in on_or_before)
    chosen = max((p for p in on_or_before if p.date == latest_date), key=lambda p: p.revision)
    if final and latest_date != day:
        gap = [latest_date + dt.timedelta(days=n) for n in range(1, (day - latest_date).days + 1)]
        later_exists = any(p.date > day for p in pubs)
        if not later_exists and not all(_is_weekend(d) for d in gap):
            raise Held(
                f"FX rates of {day.isoformat()} not published yet (latest: {latest_date.isoformat()}); waiting for them"
            )
    return RateSnapshot(chosen.date, chosen.source, dict(chosen.rates))


def conversion_factor(currency: str, target: str, rates: RateSnapshot | None) -> Decimal:
    """Units of ``target`` per unit of ``currency`` (x / rate(C) x rate(T)); 1 for the same currency."""
    if currency == target:
        return ONE
    if rates is None:
        raise Held(f"FX rates needed to convert {currency} to {target}")
    with localcontext() as ctx:
        ctx.prec = 50
        return rates.rate(target) / rates.rate(currency)
