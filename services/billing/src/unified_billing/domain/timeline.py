"""Subscription and listing facts folded into timelines: which marketplaces were billable in a period."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from unified_billing.domain.periods import ZERO, Period, as_utc


# -- timelines ------------------------------------------------------------------------------------------
class FactKind(StrEnum):
    """The regions events billing keeps as facts, by their event names (stored in ``subscription_facts.kind``)."""

    SUBSCRIPTION_STARTED = "SubscriptionStarted"
    SUBSCRIPTION_ENDED = "SubscriptionEnded"
    LISTINGS_ACTIVATED = "ListingsActivated"
    LISTINGS_DEACTIVATED = "ListingsDeactivated"
    PARTICIPATION_OPENED = "ParticipationOpened"
    PARTICIPATION_SUSPENDED = "ParticipationSuspended"
    PARTICIPATION_REINSTATED = "ParticipationReinstated"
    PARTICIPATION_CLOSED = "ParticipationClosed"


@dataclass(frozen=True, slots=True)
class Fact:
    """One subscription or listing event: what changed in which marketplace, effective when."""

    marketplace_id: str
    kind: FactKind
    at: dt.datetime
    seq: int = 0  # arrival order: breaks ties between facts with the same effective time


@dataclass(frozen=True, slots=True)
class DayRange:
    """Days (UTC, inclusive) on which something was active at some moment."""

    first: dt.date
    last: dt.date

    def clip(self, first: dt.date, last: dt.date) -> DayRange | None:
        lo, hi = max(self.first, first), min(self.last, last)
        return DayRange(lo, hi) if lo <= hi else None


SUBSCRIPTION_ON = frozenset({FactKind.SUBSCRIPTION_STARTED})
# Regions' state machine: ending a subscription also deactivates listings; closing ends both.
SUBSCRIPTION_OFF = frozenset({FactKind.SUBSCRIPTION_ENDED, FactKind.PARTICIPATION_CLOSED})
LISTINGS_ON = frozenset({FactKind.LISTINGS_ACTIVATED})
LISTINGS_OFF = frozenset({FactKind.LISTINGS_DEACTIVATED, FactKind.SUBSCRIPTION_ENDED, FactKind.PARTICIPATION_CLOSED})


def active_intervals(
    facts: Iterable[Fact], on: frozenset[FactKind], off: frozenset[FactKind]
) -> dict[str, list[tuple[dt.datetime, dt.datetime | None]]]:
    """Fold on/off facts, ordered by effective time, into half-open intervals per marketplace.

    Repeated "on" while active and "off" while inactive change nothing; an open interval has end None.
    Late facts simply sort into place, so the timeline is always the one the facts describe.
    """
    out: dict[str, list[tuple[dt.datetime, dt.datetime | None]]] = {}
    relevant = sorted((f for f in facts if f.kind in on or f.kind in off), key=lambda f: (as_utc(f.at), f.seq))
    started: dict[str, dt.datetime] = {}
    for fact in relevant:
        mp = fact.marketplace_id
        if fact.kind in on and mp not in started:
            started[mp] = as_utc(fact.at)
        elif fact.kind in off and mp in started:
            out.setdefault(mp, []).append((started.pop(mp), as_utc(fact.at)))
    for mp, start in started.items():
        out.setdefault(mp, []).append((start, None))
    return out


def day_ranges(intervals: Sequence[tuple[dt.datetime, dt.datetime | None]], until: dt.date) -> list[DayRange]:
    """The UTC days each interval touches; an empty interval touches none, an open one runs to ``until``."""
    ranges = []
    for start, end in intervals:
        if end is not None and end <= start:
            continue
        last = until if end is None else (end - dt.timedelta(microseconds=1)).date()
        if start.date() <= last:
            ranges.append(DayRange(start.date(), last))
    return ranges


def billable_marketplaces(
    facts: Sequence[Fact], first_day: dt.date, last_day: dt.date, fees: Mapping[str, Decimal]
) -> list[str]:
    """Marketplaces with subscription and listings active on one common day in [first_day, last_day],
    and a plan fee > 0 (``fees``: fee in force per marketplace; a marketplace without one is not billable)."""
    subs = active_intervals(facts, SUBSCRIPTION_ON, SUBSCRIPTION_OFF)
    listings = active_intervals(facts, LISTINGS_ON, LISTINGS_OFF)
    billable = []
    for mp in sorted(subs):
        if fees.get(mp, ZERO) <= ZERO or mp not in listings:
            continue
        sub_days = [r for r in (d.clip(first_day, last_day) for d in day_ranges(subs[mp], last_day)) if r]
        list_days = [r for r in (d.clip(first_day, last_day) for d in day_ranges(listings[mp], last_day)) if r]
        if any(a.clip(b.first, b.last) for a in sub_days for b in list_days):
            billable.append(mp)
    return billable


def first_subscription_period(facts: Iterable[Fact]) -> Period | None:
    """The account's first period: the month in which its first subscription started."""
    starts = [as_utc(f.at) for f in facts if f.kind == FactKind.SUBSCRIPTION_STARTED]
    return Period.of(min(starts)) if starts else None
