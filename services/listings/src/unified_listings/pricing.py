"""The pricing rule of an international offer (DESIGN section 10), as pure functions on Decimal.

target = round_to_ending(source x fx x (1 + percent/100) + fixed), clamped to [floor, ceiling]. Every step is
non-decreasing in the source price, so the rule is monotone; the clamp comes last, so the price is never
below the floor (nor above the ceiling).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from unified_shared.contracts.listings import Clamp, Ending
from unified_shared.money import minor_units, quantum

FX_PLACES = Decimal("1e-10")  # a published conversion factor has 10 decimals: the price is reproducible from it
HUNDRED = Decimal(100)
ENDINGS: tuple[Ending, ...] = ("none", ".99", ".95", "whole", "tens")


class InvalidRule(ValueError):
    """A rule that cannot price: ``field`` names what is wrong."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Rule:
    currency: str
    percent: Decimal = Decimal(0)
    fixed: Decimal = Decimal(0)
    ending: Ending = "none"
    floor: Decimal = Decimal("0.01")
    ceiling: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Priced:
    price: Decimal
    clamped: Clamp | None


def check_rule(rule: Rule) -> Rule:
    """Refuse a rule that could price at or below zero, endings the currency cannot show, misplaced decimals."""
    digits = minor_units(rule.currency)
    if rule.ending in (".99", ".95") and digits < 2:
        raise InvalidRule("ending", f"{rule.currency} has no cents: use 'whole' or 'tens', not {rule.ending!r}")
    if rule.ending not in ENDINGS:
        raise InvalidRule("ending", f"ending must be one of {', '.join(ENDINGS)}")
    if rule.percent <= -HUNDRED:
        raise InvalidRule("percent", "percent must be above -100")
    for name, value in (("fixed", rule.fixed), ("floor", rule.floor), ("ceiling", rule.ceiling)):
        if value is None:
            continue
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int) or -exponent > digits:
            raise InvalidRule(name, f"{name} {value} has more decimals than {rule.currency} allows ({digits})")
    if rule.floor <= 0:
        raise InvalidRule("floor", "floor must be greater than zero")
    if rule.ceiling is not None and rule.ceiling < rule.floor:
        raise InvalidRule("ceiling", "ceiling must not be below the floor")
    return rule


def conversion_factor(source_rate: Decimal, target_rate: Decimal) -> Decimal:
    """Units of the target currency per unit of the source, from their rates per EUR, to ``FX_PLACES``."""
    with localcontext() as ctx:
        ctx.prec = 40
        return (target_rate / source_rate).quantize(FX_PLACES, rounding=ROUND_HALF_UP)


def round_to_ending(amount: Decimal, currency: str, ending: Ending) -> Decimal:
    """The price with the chosen ending nearest to ``amount`` (ties up); non-decreasing in ``amount``."""
    q = quantum(currency)
    with localcontext() as ctx:
        ctx.prec = 40
        if ending == "none":
            return amount.quantize(q, rounding=ROUND_HALF_UP)
        if ending in (".99", ".95"):
            cents = Decimal(ending)
            return ((amount - cents).quantize(Decimal(1), rounding=ROUND_HALF_UP) + cents).quantize(q)
        if ending == "whole":
            return amount.quantize(Decimal(1), rounding=ROUND_HALF_UP).quantize(q)
        tens = (amount / 10).quantize(Decimal(1), rounding=ROUND_HALF_UP) * 10
        return tens.quantize(q)


def target_price(source_price: Decimal, factor: Decimal, rule: Rule) -> Priced:
    """The target price of one offer: converted, marked up, rounded to the ending, clamped (clamp reported)."""
    with localcontext() as ctx:
        ctx.prec = 40
        raw = source_price * factor * (1 + rule.percent / HUNDRED) + rule.fixed
    rounded = round_to_ending(raw, rule.currency, rule.ending)
    q = quantum(rule.currency)
    if rounded < rule.floor:
        return Priced(rule.floor.quantize(q), "floor")
    if rule.ceiling is not None and rounded > rule.ceiling:
        return Priced(rule.ceiling.quantize(q), "ceiling")
    return Priced(rounded, None)
