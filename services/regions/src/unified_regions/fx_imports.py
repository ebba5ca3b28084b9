"""FX commands and reads: import ECB rates (a file, or what the fetcher brought) and read them back.

An import is one unit of work: it holds the event store's append lock from reading the stored revisions to
the commit, saves each new or changed day and appends its FxRatesPublished; the relay is woken after.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from unified_regions import domain, ecb
from unified_regions.store import FxDay, PgRegionsStore
from unified_shared.clock import Clock, system_clock
from unified_shared.contracts.regions import FxRatesPublished
from unified_shared.errors import NotFound
from unified_shared.eventstore import StreamAppend
from unified_shared.progress import ProgressReport
from unified_shared.uow import Units

FX_CHUNK_DAYS = 500


@dataclass(slots=True)
class ImportReport:
    days_in_file: int = 0
    days_considered: int = 0
    published: int = 0  # new days (revision 1)
    corrected: int = 0  # changed days (revision + 1)
    unchanged: int = 0
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    corrected_dates: list[dt.date] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "days_in_file": self.days_in_file,
            "days_considered": self.days_considered,
            "published": self.published,
            "corrected": self.corrected,
            "unchanged": self.unchanged,
            "first_date": self.first_date.isoformat() if self.first_date else None,
            "last_date": self.last_date.isoformat() if self.last_date else None,
            "corrected_dates": [d.isoformat() for d in self.corrected_dates[:100]],
        }


def fx_stream(date: dt.date) -> str:
    return f"fx-{date.isoformat()}"


class FxImports:
    def __init__(self, units: Units[PgRegionsStore], clock: Clock = system_clock) -> None:
        self.units = units
        self.clock = clock

    async def import_fx(
        self, data: bytes, *, filename: str, origin: str | None = None, since: dt.date | None = None
    ) -> ImportReport:
        """Parse a whole ECB file (any error rejects it with its line: ``ecb.FxFileError``), then publish each
        new or changed day as one FxRatesPublished, all in one transaction with batched statements."""
        days = await asyncio.to_thread(ecb.parse_file, data, filename)  # CPU-bound: keep the loop free
        return await self.import_days(days, origin=origin or filename, since=since)

    async def import_days(
        self,
        days: list[ecb.DayRates],
        *,
        origin: str,
        since: dt.date | None = None,
        extra_derived: dict[str, str] | None = None,
    ) -> ImportReport:
        """Publish each new or changed day of parsed rates (``extra_derived``: currency -> which other source
        gave it, for currencies ECB does not publish)."""
        report = ImportReport(days_in_file=len(days))
        chosen = sorted((d for d in days if since is None or d.date >= since), key=lambda d: d.date)
        report.days_considered = len(chosen)
        if not chosen:
            return report
        report.first_date, report.last_date = chosen[0].date, chosen[-1].date
        source = f"ECB euro foreign exchange reference rates ({origin}); {domain.pegged_source_note()}"
        async with self.units.command() as uow:
            await uow.store.lock_appends()  # no other append between reading revisions and writing ours
            existing = await uow.store.stored_days([d.date for d in chosen])
            to_save: list[FxDay] = []
            appends: list[StreamAppend] = []
            occurred_at = self.clock()
            for day in chosen:
                rates, derived = domain.with_pegged(day.rates)
                derived = {**derived, **{c: how for c, how in (extra_derived or {}).items() if c in rates}}
                previous = existing.get(day.date)
                revision = domain.fx_revision(previous, rates)
                if revision is None:
                    report.unchanged += 1
                    continue
                if revision > 1:
                    report.corrected += 1
                    report.corrected_dates.append(day.date)
                else:
                    report.published += 1
                to_save.append(FxDay(day.date, rates, derived, source, revision))
                event = FxRatesPublished(date=day.date, rates=rates, source=source, derived=derived, revision=revision)
                appends.append(StreamAppend(fx_stream(day.date), revision - 1, [event], occurred_at))
            # The whole history is thousands of days: written in chunks (still one transaction) with progress.
            with ProgressReport(f"importing FX days ({origin})", total=len(to_save)) as progress:
                for start in range(0, len(to_save), FX_CHUNK_DAYS):
                    await uow.store.save_days(to_save[start : start + FX_CHUNK_DAYS])
                    await uow.append_streams(appends[start : start + FX_CHUNK_DAYS])
                    progress.advance(len(to_save[start : start + FX_CHUNK_DAYS]))
        return report

    async def summary(self) -> dict[str, Any]:
        async with self.units.query() as store:
            return await store.fx_summary()

    async def day(self, date: dt.date, *, on_or_before: bool) -> FxDay:
        """The rates ECB published for ``date`` (or the last day before it); a currency without a rate that
        day is absent, never zero."""
        async with self.units.query() as store:
            day = await store.get_day(date, on_or_before=on_or_before)
        if day is None:
            hint = "" if on_or_before else " (ECB publishes none at weekends and holidays; try ?on_or_before=true)"
            raise NotFound(None, f"no FX rates for {date}{hint}")
        return day
