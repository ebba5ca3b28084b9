"""International offers in the demo: the seller's US offers linked to CA, MX, UK, DE, FR and JP with a rule per
target; the prices each marketplace gets; then a new FX day imported and every linked offer re-priced.

The new day is simulated (the ECB history shipped with the platform ends 2026-10-30): ECB's last day, dated the
next business day, with the dollar 2 % weaker against the euro. FX days are the platform's, not the account's: on
a platform where an earlier run imported that day already, the offers are priced at it from the start, so this
run corrects the day instead (its next revision, the dollar back at ECB's rate or 2 % weaker again). Either
way the prices move, and the report says which day and revision they moved from and to.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from rich.table import Table

from unified_demo.driver import DemoError, Session, ecb_history_file

US_OFFERS = {"NW-TEE-01": "24.99", "NW-HOODIE-02": "59.00", "NW-CAP-03": "19.50", "NW-BOTTLE-04": "14.99"}
RULES: list[dict[str, Any]] = [
    {"marketplace": "CA", "percent": "5", "ending": ".99", "floor": "9.99"},
    {"marketplace": "MX", "percent": "8", "ending": "whole", "floor": "149"},
    {"marketplace": "UK", "percent": "10", "ending": ".99", "floor": "7.99"},
    {"marketplace": "DE", "percent": "12", "ending": ".95", "floor": "8.95", "ceiling": "59.95"},
    {"marketplace": "FR", "percent": "12", "ending": ".99", "floor": "8.99"},
    {"marketplace": "JP", "percent": "10", "ending": "tens", "floor": "1200"},
]
TARGETS = [r["marketplace"] for r in RULES]


@dataclass
class ListingsOutcome:
    before: dict[tuple[str, str], dict[str, Any]]
    after: dict[tuple[str, str], dict[str, Any]]
    fx: SimulatedDay


@dataclass(frozen=True, slots=True)
class SimulatedDay:
    """The CSV to import, and what it changes: the USD rate (units per EUR) the offers are priced at before and
    after, and the labels of the two publications."""

    csv: bytes
    day: str
    usd_before: Decimal
    usd_after: Decimal
    before: str  # "2026-10-30", or "2026-11-02 revision 1" when an earlier run imported the day
    after: str

    @property
    def corrected(self) -> bool:
        """An earlier run imported the day: this import is its next revision."""
        return self.before.startswith(self.day)

    def change(self) -> str:
        """How the dollar moved against the euro (more dollars per euro: weaker)."""
        percent = abs(self.usd_after / self.usd_before - 1) * 100
        return f"USD {percent:.2f} % {'weaker' if self.usd_after > self.usd_before else 'stronger'}"


def simulated_fx_day(published: tuple[Decimal, int] | None = None) -> SimulatedDay:
    """ECB's newest day as a one-day CSV dated the next business day, USD 2 % weaker (units per EUR up).

    ``published``: the USD rate and revision of that day on the platform, if an earlier run imported it. The CSV
    then corrects it: back to ECB's rate when it holds the weaker one, else to the weaker one.
    """
    with zipfile.ZipFile(io.BytesIO(ecb_history_file())) as archive:
        text = archive.read("eurofxref-hist.csv").decode()
    rows = list(csv.reader(io.StringIO(text)))
    header, newest = rows[0], rows[1]
    last = dt.date.fromisoformat(newest[0])
    new = last + dt.timedelta(days=3 if last.weekday() == 4 else 1)
    ecb_usd = Decimal(newest[header.index("USD")])
    weaker = (ecb_usd * Decimal("1.02")).quantize(Decimal("0.0001"))
    if published is None:
        usd_before, usd_after, before, after = ecb_usd, weaker, last.isoformat(), new.isoformat()
    else:
        usd_before, revision = published
        usd_after = ecb_usd if usd_before == weaker else weaker
        before, after = f"{new} revision {revision}", f"{new} revision {revision + 1}"
    values = dict(zip(header[1:], newest[1:], strict=False)) | {"USD": format(usd_after, "f")}
    moved = [new.isoformat(), *values.values()]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, moved])
    return SimulatedDay(out.getvalue().encode(), new.isoformat(), usd_before, usd_after, before, after)


class InternationalOffers:
    def __init__(
        self, http: httpx.AsyncClient, listings: str, regions: str, operator_token: str, step: Callable[[str], None]
    ) -> None:
        self.http = http
        self.listings = listings
        self.regions = regions
        self.operator_token = operator_token
        self.step = step

    async def _until(self, what: str, probe: Callable[[], Any], timeout_s: float = 90.0) -> Any:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            last = await probe()
            if last:
                return last
            await asyncio.sleep(0.3)
        raise DemoError(f"{what}: not reached in {timeout_s:.0f} s (last: {str(last)[:300]})")

    async def _offers(self, session: Session) -> dict[tuple[str, str], dict[str, Any]]:
        answer = await self.http.get(f"{self.listings}/listings/v1/offers", headers=session.owner.auth)
        if answer.status_code != 200:
            raise DemoError(f"listings offers: HTTP {answer.status_code} {answer.text[:300]}")
        return {(o["sku"], o["marketplace"]): o for o in answer.json()["offers"]}

    async def run(self, session: Session) -> ListingsOutcome:
        async def ready() -> bool:
            try:
                return (await self.http.get(f"{self.listings}/health/ready")).status_code == 200
            except httpx.HTTPError:
                return False

        await self._until("listings ready", ready)
        for sku, price in US_OFFERS.items():
            answer = await self.http.put(
                f"{self.listings}/listings/v1/offers/US/{sku}",
                json={"price": price, "quantity": 50},
                headers=session.owner.auth,
            )
            if answer.status_code != 200:
                raise DemoError(f"US offer {sku}: HTTP {answer.status_code} {answer.text[:300]}")

        async def linked() -> bool:
            # The listings service learns the openings from regions' events: a 422 for a target is retried.
            answer = await self.http.put(
                f"{self.listings}/listings/v1/links/US", json={"sku": "*", "targets": RULES}, headers=session.owner.auth
            )
            return answer.status_code == 200

        await self._until("link US -> CA, MX, UK, DE, FR, JP", linked)

        async def all_priced() -> dict[tuple[str, str], dict[str, Any]] | None:
            offers = await self._offers(session)
            wanted = [(sku, m) for sku in US_OFFERS for m in TARGETS]
            return offers if all(offers.get(k, {}).get("status") == "Active" for k in wanted) else None

        before = await self._until("every target priced", all_priced)
        self.step(f"linked {len(US_OFFERS)} US offers to {', '.join(TARGETS)} with a rule each; every target priced")
        fx = simulated_fx_day(await self._published(session, "USD"))
        answer = await self.http.post(
            f"{self.regions}/v1/admin/fx-rates/import",
            params={"filename": "simulated-day.csv"},
            content=fx.csv,
            headers={"X-Operator-Token": self.operator_token, "Content-Type": "text/csv"},
        )
        if answer.status_code != 200:
            raise DemoError(f"import the simulated FX day: HTTP {answer.status_code} {answer.text[:300]}")

        async def repriced() -> dict[tuple[str, str], dict[str, Any]] | None:
            # Every target is priced in another currency than the dollar: each one's rate moves with the dollar.
            offers = await self._offers(session)
            wanted = [(sku, m) for sku in US_OFFERS for m in TARGETS]
            moved = all(
                offers[k]["status"] == "Active"
                and offers[k]["fx_rate_date"] == fx.day
                and offers[k]["fx_rate"] != before[k]["fx_rate"]
                for k in wanted
                if k in offers
            )
            return offers if moved else None

        after = await self._until("re-priced after the FX day", repriced)
        what = f"new FX day {fx.day}"
        if fx.corrected:
            what = f"FX day {fx.day} corrected to {fx.after.removeprefix(fx.day).strip()}"
        self.step(f"{what} (simulated from ECB's last day, {fx.change()}): every target re-priced")
        return ListingsOutcome(before, after, fx)

    async def _published(self, session: Session, currency: str) -> tuple[Decimal, int] | None:
        """The platform's rate of ``currency`` on the simulated day and its revision, if the day is published."""
        day = simulated_fx_day().day
        answer = await self.http.get(f"{self.regions}/v1/fx-rates/{day}", headers=session.owner.auth)
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise DemoError(f"FX day {day}: HTTP {answer.status_code} {answer.text[:300]}")
        body = answer.json()
        return Decimal(body["rates"][currency]), int(body["revision"])


def offers_table(outcome: ListingsOutcome) -> Table:
    table = Table(
        title=f"International offers: US price -> target prices (rates of {outcome.fx.before} -> {outcome.fx.after})"
    )
    table.add_column("SKU")
    table.add_column("US (USD)", justify="right")
    for m in TARGETS:
        table.add_column(f"{m} ({outcome.after[(next(iter(US_OFFERS)), m)]['currency']})", justify="right")
    for sku, price in US_OFFERS.items():
        cells = [sku, price]
        for m in TARGETS:
            old, new = outcome.before[(sku, m)], outcome.after[(sku, m)]
            mark = "*" if new.get("clamped") else ""
            cells.append(f"{old['price']} -> {new['price']}{mark}")
        table.add_row(*cells)
    return table


def rules_line() -> str:
    parts = []
    for r in RULES:
        ceiling = f", ceiling {r['ceiling']}" if "ceiling" in r else ""
        parts.append(f"{r['marketplace']} +{r['percent']}% ending {r['ending']} floor {r['floor']}{ceiling}")
    return "rules (* = clamped): " + "; ".join(parts)
