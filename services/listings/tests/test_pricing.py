"""The pricing rule's laws (DESIGN section 10): monotone in the source price, never below the floor nor above
the ceiling, the chosen ending kept where not clamped, the currency's minor unit respected."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unified_listings.pricing import InvalidRule, Rule, check_rule, conversion_factor, round_to_ending, target_price

from unified_shared.money import minor_units

CURRENCIES = ["EUR", "JPY", "GBP", "MXN", "CAD"]
prices = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)
factors = st.decimals(min_value=D("0.001"), max_value=D("500"), places=6)


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    currency = draw(st.sampled_from(CURRENCIES))
    digits = minor_units(currency)
    endings = ["none", "whole", "tens"] + ([".99", ".95"] if digits == 2 else [])
    money = st.decimals(min_value=D(1), max_value=D(5000), places=digits)
    floor = draw(money)
    ceiling = draw(st.none() | money.filter(lambda c: c >= floor))
    return check_rule(
        Rule(
            currency,
            percent=draw(st.decimals(min_value=D(-50), max_value=D(200), places=2)),
            fixed=draw(st.decimals(min_value=D(-20), max_value=D(20), places=digits)),
            ending=draw(st.sampled_from(endings)),
            floor=floor,
            ceiling=ceiling,
        )
    )


@settings(max_examples=400, deadline=None)
@given(rules(), factors, prices, prices)
def test_monotone_in_the_source_price(rule: Rule, factor: D, a: D, b: D) -> None:
    low, high = sorted((a, b))
    assert target_price(low, factor, rule).price <= target_price(high, factor, rule).price


@settings(max_examples=400, deadline=None)
@given(rules(), factors, prices)
def test_within_floor_and_ceiling_in_minor_units_with_its_ending(rule: Rule, factor: D, source: D) -> None:
    priced = target_price(source, factor, rule)
    assert priced.price >= rule.floor
    if rule.ceiling is not None:
        assert priced.price <= rule.ceiling
    exponent = priced.price.as_tuple().exponent
    assert isinstance(exponent, int) and -exponent == minor_units(rule.currency)
    if priced.clamped is None:
        if rule.ending in (".99", ".95"):
            assert str(priced.price).endswith(rule.ending[1:])
        elif rule.ending == "whole":
            assert priced.price == priced.price.to_integral_value()
        elif rule.ending == "tens":
            assert priced.price % 10 == 0
    else:
        assert priced.price == (rule.floor if priced.clamped == "floor" else rule.ceiling)


def test_worked_examples() -> None:
    # 24.99 USD -> EUR at 1.1000 USD per EUR: 22.718..., +10 % = 24.990..., ending .99 -> 24.99 EUR
    factor = conversion_factor(D("1.1000"), D("1"))
    assert factor == D("0.9090909091")
    assert target_price(D("24.99"), factor, Rule("EUR", D(10), D(0), ".99", D("9.99"))).price == D("24.99")
    # JPY, whole yen: 24.99 USD at 1.10 USD and 160.00 JPY per EUR = 3634.909... -> 3635 JPY; tens -> 3630
    jpy = conversion_factor(D("1.10"), D("160.00"))
    assert target_price(D("24.99"), jpy, Rule("JPY", ending="whole", floor=D(1000))).price == D("3635")
    assert target_price(D("24.99"), jpy, Rule("JPY", ending="tens", floor=D(1000))).price == D("3630")
    # clamped
    clamped = target_price(D("1.00"), factor, Rule("EUR", floor=D("4.99")))
    assert (clamped.price, clamped.clamped) == (D("4.99"), "floor")
    capped = target_price(D("999.00"), factor, Rule("EUR", floor=D("1"), ceiling=D("100.00")))
    assert (capped.price, capped.clamped) == (D("100.00"), "ceiling")


def test_endings_round_to_the_nearest_ties_up() -> None:
    assert round_to_ending(D("12.48"), "EUR", ".99") == D("11.99")
    assert round_to_ending(D("12.49"), "EUR", ".99") == D("12.99")  # a tie: up
    assert round_to_ending(D("12.50"), "EUR", ".99") == D("12.99")
    assert round_to_ending(D("12.005"), "EUR", "none") == D("12.01")
    assert round_to_ending(D("1234.5"), "JPY", "whole") == D("1235")


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        (Rule("JPY", ending=".99", floor=D(100)), "ending"),
        (Rule("EUR", floor=D(0)), "floor"),
        (Rule("EUR", floor=D(5), ceiling=D(4)), "ceiling"),
        (Rule("EUR", percent=D(-100)), "percent"),
        (Rule("EUR", floor=D("1.001")), "floor"),
    ],
)
def test_rules_that_cannot_price_are_refused_naming_the_field(rule: Rule, field: str) -> None:
    with pytest.raises(InvalidRule) as refused:
        check_rule(rule)
    assert refused.value.field == field
