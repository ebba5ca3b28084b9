"""The capped-fee rule (DESIGN section 7) as pure functions: no I/O, Decimal in and out (the capped shares
are computed as exact rationals of those Decimals, so the only rounding is the final one down).

Inputs are facts (subscription and listing events with their effective time), the fee schedule, FX
publications (ECB euro reference rates) and the cap. Outputs are charge lines per marketplace, and the
documents (invoices, supplementary invoices, credit notes) that make what was issued equal what is due.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal, localcontext
from enum import StrEnum
from fractions import Fraction
from typing import Any
from uuid import UUID

from unified_shared.catalog import UnknownMarketplace, by_id
from unified_shared.money import minor_units, round_down

RATIO_PLACES = 10  # the ratio is recorded (for display) truncated to this many decimal places
FX_BASE = "EUR"
ZERO = Decimal(0)
ONE = Decimal(1)


class Held(Exception):
    """Data needed for the charge is missing: the period waits, it is never guessed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- periods -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, order=True)
class Period:
    """A billing period: one calendar month in UTC."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        try:
            year_s, month_s = text.split("-")
            if len(year_s) != 4 or len(month_s) != 2:
                raise ValueError(text)
            period = cls(int(year_s), int(month_s))
        except ValueError:
            raise ValueError(f"period must be YYYY-MM, got {text!r}") from None
        if not 1 <= period.month <= 12:
            raise ValueError(f"period must be YYYY-MM, got {text!r}")
        return period

    @classmethod
    def of(cls, moment: dt.datetime | dt.date) -> Period:
        if isinstance(moment, dt.datetime):
            moment = _utc(moment).date()
        return cls(moment.year, moment.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        return self.next().first_day - dt.timedelta(days=1)

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def prev(self) -> Period:
        return Period(self.year - 1, 12) if self.month == 1 else Period(self.year, self.month - 1)

    def end(self) -> dt.datetime:
        """The first instant after the period (it has ended once the clock reaches this)."""
        first = self.next().first_day
        return dt.datetime(first.year, first.month, first.day, tzinfo=dt.UTC)


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(dt.UTC)


# -- timelines ------------------------------------------------------------------------------------------
class FactKind(StrEnum):
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
    relevant = sorted((f for f in facts if f.kind in on or f.kind in off), key=lambda f: (_utc(f.at), f.seq))
    started: dict[str, dt.datetime] = {}
    for fact in relevant:
        mp = fact.marketplace_id
        if fact.kind in on and mp not in started:
            started[mp] = _utc(fact.at)
        elif fact.kind in off and mp in started:
            out.setdefault(mp, []).append((started.pop(mp), _utc(fact.at)))
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
    starts = [_utc(f.at) for f in facts if f.kind == FactKind.SUBSCRIPTION_STARTED]
    return Period.of(min(starts)) if starts else None


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


# -- charges --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Cap:
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class ChargeLine:
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
        lines.append(
            ChargeLine(
                marketplace_id=f.marketplace_id,
                currency=f.currency,
                fee=f.fee,
                ratio=ratio,
                amount=amount,
                discount=f.fee - amount,
                **_fx_fields(f.currency, cap, snapshot),  # type: ignore[arg-type]
            )
        )
    return lines


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
    return ChargeLine(
        marketplace_id=home.marketplace_id,
        currency=home.currency,
        fee=home.fee,
        ratio=ratio,
        amount=amount,
        discount=home.fee - amount,
        description="first period: home marketplace only",
        **_fx_fields(home.currency, cap, snapshot),  # type: ignore[arg-type]
    )


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


# -- documents ------------------------------------------------------------------------------------------
class DocumentKind(StrEnum):
    INVOICE = "invoice"
    SUPPLEMENTARY = "supplementary"
    CREDIT_NOTE = "credit_note"


def _account_hash(account_id: UUID, period: Period, currency: str) -> str:
    return hashlib.sha256(f"{account_id}:{period}:{currency}".encode()).hexdigest()[:16].upper()


def invoice_id(account_id: UUID, period: Period, currency: str) -> str:
    """Deterministic: the same (account, period, currency) always gives the same ID."""
    return f"INV-{period}-{currency}-{_account_hash(account_id, period, currency)}"


def supplementary_id(account_id: UUID, period: Period, currency: str, seq: int) -> str:
    return f"{invoice_id(account_id, period, currency)}-S{seq}"


def credit_note_id(account_id: UUID, period: Period, currency: str, seq: int) -> str:
    return f"CN-{period}-{currency}-{_account_hash(account_id, period, currency)}-{seq}"


@dataclass(frozen=True, slots=True)
class IssuedDocument:
    """An issued invoice or credit note, as far as the comparison needs it."""

    document_id: str
    kind: DocumentKind
    currency: str
    amounts: Mapping[str, Decimal]  # marketplace -> amount on the document (credit notes: credited, >= 0)


@dataclass(frozen=True, slots=True)
class Document:
    """A document to issue."""

    document_id: str
    kind: DocumentKind
    account_id: UUID
    period: Period
    currency: str
    lines: tuple[ChargeLine, ...]
    invoice_id: str  # the period's invoice for this currency (itself, for an invoice)
    seq: int
    reason: str = ""
    total: Decimal = field(default=ZERO)
    discount: Decimal = field(default=ZERO)


def issued_net(documents: Iterable[IssuedDocument], currency: str) -> dict[str, Decimal]:
    """Net amount issued per marketplace in ``currency``: invoices minus credit notes."""
    net: dict[str, Decimal] = {}
    for doc in documents:
        if doc.currency != currency:
            continue
        sign = -1 if doc.kind == DocumentKind.CREDIT_NOTE else 1
        for mp, amount in doc.amounts.items():
            net[mp] = net.get(mp, ZERO) + sign * amount
    return net


def plan_documents(
    account_id: UUID, charges: PeriodCharges, issued: Sequence[IssuedDocument], *, reason: str
) -> list[Document]:
    """What to issue so that the net issued per marketplace equals what is due; issued documents never change.

    Nothing issued yet in a currency: its invoice (deterministic ID). Otherwise, per marketplace, a shortfall
    goes on a supplementary invoice and an excess on a credit note. Equal: nothing (closing twice is a no-op).
    """
    period = charges.period
    due = charges.by_currency()
    currencies = sorted(set(due) | {d.currency for d in issued})
    out: list[Document] = []
    for currency in currencies:
        lines = due.get(currency, [])
        docs = [d for d in issued if d.currency == currency]
        base_id = invoice_id(account_id, period, currency)
        common: dict[str, Any] = {"account_id": account_id, "period": period, "currency": currency, "base_id": base_id}
        if not docs:
            if lines:
                out.append(_document(DocumentKind.INVOICE, base_id, lines, **common, seq=0, reason=""))
            continue
        net = issued_net(docs, currency)
        due_by_mp = {line.marketplace_id: line for line in lines}
        extra: list[ChargeLine] = []
        credit: list[ChargeLine] = []
        for mp in sorted(set(net) | set(due_by_mp)):
            line = due_by_mp.get(mp)
            now_due = line.amount if line else ZERO
            delta = now_due - net.get(mp, ZERO)
            if delta == ZERO:
                continue
            adj = _adjustment_line(mp, currency, line, was=net.get(mp, ZERO), now=now_due, delta=abs(delta))
            (extra if delta > ZERO else credit).append(adj)
        if extra:
            seq = 1 + sum(1 for d in docs if d.kind == DocumentKind.SUPPLEMENTARY)
            doc_id = supplementary_id(account_id, period, currency, seq)
            out.append(_document(DocumentKind.SUPPLEMENTARY, doc_id, extra, **common, seq=seq, reason=reason))
        if credit:
            seq = 1 + sum(1 for d in docs if d.kind == DocumentKind.CREDIT_NOTE)
            doc_id = credit_note_id(account_id, period, currency, seq)
            out.append(_document(DocumentKind.CREDIT_NOTE, doc_id, credit, **common, seq=seq, reason=reason))
    return out


def _adjustment_line(
    mp: str, currency: str, line: ChargeLine | None, *, was: Decimal, now: Decimal, delta: Decimal
) -> ChargeLine:
    description = f"adjustment: issued {was}, due {now}"
    if line is None:
        return ChargeLine(mp, currency, ZERO, ZERO, delta, ZERO, description=description + " (no longer billable)")
    return ChargeLine(
        marketplace_id=mp,
        currency=currency,
        fee=line.fee,
        ratio=line.ratio,
        amount=delta,
        discount=ZERO,
        fx_rate_date=line.fx_rate_date,
        fx_rate_source=line.fx_rate_source,
        fx_rate=line.fx_rate,
        fx_to_cap=line.fx_to_cap,
        description=description,
    )


def _document(
    kind: DocumentKind,
    document_id: str,
    lines: Sequence[ChargeLine],
    *,
    account_id: UUID,
    period: Period,
    currency: str,
    base_id: str,
    seq: int,
    reason: str,
) -> Document:
    return Document(
        document_id=document_id,
        kind=kind,
        account_id=account_id,
        period=period,
        currency=currency,
        lines=tuple(lines),
        invoice_id=base_id,
        seq=seq,
        reason=reason,
        total=sum((line.amount for line in lines), ZERO),
        discount=sum((line.discount for line in lines), ZERO),
    )
