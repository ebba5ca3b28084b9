"""The demo's simulated FX day moves the dollar on every run, also when an earlier run imported the day.

FX days belong to the platform, not to the demo's new account: a second `make demo` on the same platform priced
the offers at the simulated day from the start, and its "before -> after" table showed no change at all.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from unified_demo.listings import simulated_fx_day


def _usd(day_csv: bytes) -> tuple[str, Decimal]:
    header, row = list(csv.reader(io.StringIO(day_csv.decode())))
    return row[0], Decimal(row[header.index("USD")])


def test_a_fresh_platform_gets_a_new_day_with_the_dollar_2_percent_weaker() -> None:
    fx = simulated_fx_day()
    day, usd = _usd(fx.csv)
    assert (day, fx.after, fx.corrected) == (fx.day, fx.day, False)
    assert fx.before < fx.day  # ECB's last day
    assert usd == fx.usd_after == (fx.usd_before * Decimal("1.02")).quantize(Decimal("0.0001"))
    assert fx.change() == "USD 2.00 % weaker"


def test_a_day_imported_by_an_earlier_run_is_corrected_and_the_dollar_moves_each_time() -> None:
    first = simulated_fx_day()
    second = simulated_fx_day((first.usd_after, 1))  # the platform holds the first run's day
    third = simulated_fx_day((second.usd_after, 2))
    assert second.corrected and (second.before, second.after) == (f"{first.day} revision 1", f"{first.day} revision 2")
    assert _usd(second.csv) == (first.day, first.usd_before)  # back at ECB's rate: the dollar stronger
    assert second.usd_after != second.usd_before and "stronger" in second.change()
    assert _usd(third.csv) == (first.day, first.usd_after) and "weaker" in third.change()


def test_only_the_dollar_changes() -> None:
    first = simulated_fx_day()
    second = simulated_fx_day((first.usd_after, 1))
    a, b = (list(csv.reader(io.StringIO(fx.csv.decode()))) for fx in (first, second))
    usd = a[0].index("USD")
    assert a[0] == b[0] and [v for i, v in enumerate(a[1]) if i != usd] == [v for i, v in enumerate(b[1]) if i != usd]
