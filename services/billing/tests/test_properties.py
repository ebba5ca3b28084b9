"""Property tests (hypothesis) of the capped rule over random marketplace sets, fees, rates and caps.

USD values are checked with exact rational arithmetic (fractions), independent of the Decimal code.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from unified_billing import domain
from unified_billing.domain import Cap, FeeAt, RateSnapshot
from unified_shared.catalog import all_marketplaces
from unified_shared.money import minor_units

MARKETS = [m for m in all_marketplaces() if m.code not in ("AE", "SA", "IN")]


def _money(currency: str, low: str, high: str) -> st.SearchStrategy[Decimal]:
    places = minor_units(currency)
    scale = 10**places
    return st.integers(int(Decimal(low) * scale), int(Decimal(high) * scale)).map(lambda n: Decimal(n).scaleb(-places))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[FeeAt], RateSnapshot, Cap]:
    chosen = draw(st.lists(st.sampled_from(MARKETS), min_size=1, max_size=len(MARKETS), unique_by=lambda m: m.code))
    fees = [FeeAt(m.marketplace_id, m.currency, draw(_money(m.currency, "0.01", "20000"))) for m in chosen]
    currencies = sorted({m.currency for m in chosen} | {"USD"})
    rates = {
        c: Decimal(draw(st.integers(1, 50_000_000))).scaleb(-4)  # 0.0001 .. 5000.0000 units per EUR
        for c in currencies
        if c != "EUR"
    }
    cap = Cap(draw(_money("USD", "0.01", "500")), "USD")
    return fees, RateSnapshot(dt.date(2026, 9, 30), "hypothesis", rates), cap


def usd_value(amount: Decimal, currency: str, rates: RateSnapshot) -> Fraction:
    if currency == "USD":
        return Fraction(amount)
    return Fraction(amount) * Fraction(rates.rate("USD")) / Fraction(rates.rate(currency))


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_lines_are_the_exact_share_within_cap_and_fee(scenario: tuple[list[FeeAt], RateSnapshot, Cap]) -> None:
    fees, rates, cap = scenario
    lines = domain.capped_charges(fees, cap, rates)
    assert [line.marketplace_id for line in lines] == [f.marketplace_id for f in fees]
    total_charged = sum(usd_value(line.amount, line.currency, rates) for line in lines)
    assert total_charged <= Fraction(cap.amount)  # S <= cap: full fees (= S); else capped
    total_fees = sum(usd_value(f.fee, f.currency, rates) for f in fees)
    for fee, line in zip(fees, lines, strict=True):
        if total_fees > Fraction(cap.amount):  # DESIGN: F_i x (cap / S), rounded down once, to the minor unit
            scale = 10 ** minor_units(fee.currency)
            assert line.amount * scale == math.floor(Fraction(fee.fee) * Fraction(cap.amount) / total_fees * scale)
        assert Decimal(0) <= line.amount <= fee.fee
        assert line.discount == fee.fee - line.amount >= 0
        assert line.amount == line.amount.quantize(Decimal(1).scaleb(-minor_units(line.currency)))


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_with_the_sum_within_the_cap_there_is_no_discount(scenario: tuple[list[FeeAt], RateSnapshot, Cap]) -> None:
    fees, rates, cap = scenario
    if sum(usd_value(f.fee, f.currency, rates) for f in fees) > Fraction(cap.amount):
        cap = Cap(Decimal(10) ** 12, "USD")  # lift the cap above S: the property must still hold
    lines = domain.capped_charges(fees, cap, rates)
    assert all(line.discount == 0 and line.amount == line.fee for line in lines)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_first_period_charge_never_exceeds_the_cap_or_the_fee(scenario: tuple[list[FeeAt], RateSnapshot, Cap]) -> None:
    fees, rates, cap = scenario
    home = fees[0]
    line = domain.first_period_charge(home, cap, rates)
    assert Decimal(0) <= line.amount <= home.fee
    assert usd_value(line.amount, line.currency, rates) <= Fraction(cap.amount)
    assert line.discount == home.fee - line.amount
