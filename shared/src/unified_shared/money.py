"""Currency minor units from ISO 4217 data (the ``iso4217`` package), and rounding that never overcharges."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from functools import cache

import iso4217


class UnknownCurrency(LookupError):
    pass


@cache
def minor_units(currency: str) -> int:
    try:
        unit = iso4217.Currency(currency.upper()).exponent
    except ValueError:
        raise UnknownCurrency(f"unknown ISO 4217 currency {currency!r}") from None
    return int(unit or 0)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def round_down(amount: Decimal, currency: str) -> Decimal:
    """Truncate towards zero to the currency's minor unit (billing must never exceed the cap)."""
    return amount.quantize(quantum(currency), rounding=ROUND_DOWN)
