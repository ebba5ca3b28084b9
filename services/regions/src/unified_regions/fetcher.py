"""ECB daily reference rates imported on regions' own schedule, from a configurable URL (ECB's by default).

Each run fetches the main file (ECB XML or CSV/ZIP) and, for a currency ECB does not publish (Egypt's EGP),
the file of a second source configured for that currency (same ECB formats; only that currency is taken, for
the dates the main file has). A failing fetch is retried with exponential backoff; the time of the last
successful import is kept for ``/health`` and the ``regions_fx_last_import_timestamp_seconds`` gauge. The
operator's file import stays as it was.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import httpx
from prometheus_client import Counter, Gauge

from unified_regions import ecb, handlers

log = logging.getLogger(__name__)

LAST_IMPORT = Gauge("regions_fx_last_import_timestamp_seconds", "Unix time of the last successful scheduled FX import")
FETCH_FAILURES = Counter("regions_fx_fetch_failures_total", "Failed scheduled FX fetch attempts", ["source"])
MAX_BYTES = 32 * 1024 * 1024


@dataclass(slots=True)
class FetchStatus:
    last_success: dt.datetime | None = None
    last_date: dt.date | None = None
    last_error: str | None = None
    attempts: int = 0
    reports: list[handlers.ImportReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "fx_last_import": self.last_success.isoformat() if self.last_success else None,
            "fx_last_rate_date": self.last_date.isoformat() if self.last_date else None,
            "fx_last_error": self.last_error,
        }


class FxFetcher:
    """Fetch, merge and publish on a schedule; ``run_once`` is one import with its retries."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        url: str,
        extra_sources: dict[str, str],
        notify: Callable[[], None] | None = None,
        attempts: int = 5,
        backoff_base_s: float = 2.0,
        timeout_s: float = 30.0,
    ) -> None:
        self._pool = pool
        self.url = url
        self.extra_sources = {c.upper(): u for c, u in extra_sources.items()}
        self.notify = notify
        self.attempts = attempts
        self.backoff_base_s = backoff_base_s
        self.timeout_s = timeout_s
        self.status = FetchStatus()

    async def _get(self, client: httpx.AsyncClient, url: str) -> bytes:
        response = await client.get(url)
        response.raise_for_status()
        if len(response.content) > MAX_BYTES:
            raise ValueError(f"{url}: {len(response.content)} bytes is more than a rates file can be")
        return response.content

    async def _fetch_with_retries(self, client: httpx.AsyncClient, url: str, label: str) -> list[ecb.DayRates]:
        delay = self.backoff_base_s
        for attempt in range(1, self.attempts + 1):
            self.status.attempts += 1
            try:
                data = await self._get(client, url)
                return await asyncio.to_thread(ecb.parse_file, data, url.rsplit("/", 1)[-1] or "rates")
            except (httpx.HTTPError, ecb.FxFileError, ValueError) as exc:
                FETCH_FAILURES.labels(label).inc()
                self.status.last_error = f"{label}: {exc}"
                log.warning("FX fetch failed", extra={"source": label, "attempt": attempt, "error": str(exc)})
                if attempt == self.attempts:
                    raise
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def run_once(self) -> handlers.ImportReport:
        """One scheduled import: the main file, each configured second source, then publish what is new."""
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=True) as client:
            days = await self._fetch_with_retries(client, self.url, "ecb")
            extra_derived: dict[str, str] = {}
            for currency, url in sorted(self.extra_sources.items()):
                if any(currency in d.rates for d in days):
                    continue  # the main source has it: never overridden
                try:
                    extra = await self._fetch_with_retries(client, url, currency)
                except (httpx.HTTPError, ecb.FxFileError, ValueError):
                    continue  # that currency stays absent ("unavailable"), never guessed
                by_date = {d.date: d.rates.get(currency) for d in extra}
                for day in days:
                    rate = by_date.get(day.date)
                    if rate is not None:
                        day.rates[currency] = rate
                extra_derived[currency] = f"{currency} from a second source ({url}), not ECB"
        report = await handlers.import_days(
            self._pool(), days, origin=f"fetched {self.url}", notify=self.notify, extra_derived=extra_derived
        )
        now = dt.datetime.now(dt.UTC)
        self.status.last_success = now
        self.status.last_date = max(d.date for d in days)
        self.status.last_error = None
        self.status.reports.append(report)
        del self.status.reports[:-10]
        LAST_IMPORT.set(now.timestamp())
        return report

    async def run(self, interval_s: float) -> None:
        """Forever: import, then wait ``interval_s`` (a failed run is logged; the next one tries again)."""
        while True:
            started = time.monotonic()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.status.last_error = repr(exc)
                log.warning("scheduled FX import failed", extra={"error": repr(exc)})
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - started)))
