"""Billing periods (calendar months in UTC) and ``Held``: a period waits when data it needs is missing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

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
            moment = as_utc(moment).date()
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


def as_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(dt.UTC)
