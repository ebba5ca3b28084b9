"""Trends for charts (GET .../overview/timeseries) and provisional conversions, fed with real events."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from unified_shared.contracts import regions

from .scenario import base_scenario, fx_events, rate_book
from .support import DE, FR, JP, US, View, ecb_history, utc, view_of


async def _series(view: View, account_id: Any, first: str, last: str, token: str | None = None, **params: Any) -> Any:
    """The time series of the purchase days ``first`` to ``last`` (both included)."""
    return await view.json(account_id, "overview/timeseries", token, **{"from": first}, to=last, **params)


def _cell(bucket: dict[str, Any], marketplace_id: str) -> dict[str, Any]:
    found = [m for m in bucket["marketplaces"] if m["marketplace_id"] == marketplace_id]
    assert len(found) == 1
    return found[0]


async def test_daily_buckets_add_up_to_the_overview_and_follow_scope(make_db, kafka_bootstrap) -> None:
    s = base_scenario()
    book = rate_book()
    async with view_of(make_db, kafka_bootstrap, *fx_events(), *s.events) as (view, _):
        got = await _series(view, s.account_id, "2026-09-09", "2026-09-15", granularity="day", currency="EUR")
        assert [b["start"] for b in got["buckets"]] == [f"2026-09-{d:02d}" for d in range(9, 16)]
        overview = await view.json(s.account_id, "overview", currency="EUR")
        for m in overview["marketplaces"]:
            cells = [_cell(b, m["marketplace_id"]) for b in got["buckets"]]
            assert sum(Decimal(c["sales"]) for c in cells) == Decimal(m["gross_sales"]["reporting"])
            assert sum(Decimal(c["refunds"]) for c in cells) == Decimal(m["refunds"]["reporting"])
            assert sum(c["orders"] for c in cells) == m["orders"]
            assert sum(c["units"] for c in cells) == m["units"]
            assert sum(c["canceled_orders"] for c in cells) == m["orders_by_status"].get("Canceled", 0)
        assert any(m["orders_by_status"].get("Canceled") for m in overview["marketplaces"])  # the check can fail
        # a day without orders is a zero point, not a gap
        empty = got["buckets"][0]["total"]
        assert (empty["sales"], empty["orders"], empty["units"]) == ("0.00", 0, 0)
        # the Saturday US order is in its own day, converted at Friday's rate (independent book)
        saturday = _cell(got["buckets"][3], US)
        assert Decimal(saturday["sales"]) == book.convert(Decimal("45.50"), "USD", date(2026, 9, 12), "EUR")
        assert Decimal(saturday["refunds"]) == book.convert(Decimal("5.25"), "USD", date(2026, 9, 12), "EUR")
        # a week (Monday first) and a month hold everything
        weekly = await _series(view, s.account_id, "2026-09-07", "2026-09-20", granularity="week", currency="EUR")
        assert [b["start"] for b in weekly["buckets"]] == ["2026-09-07", "2026-09-14"]
        assert sum(b["total"]["orders"] for b in weekly["buckets"]) == overview["total"]["orders"]
        monthly = await _series(view, s.account_id, "2026-09-01", "2026-09-30", granularity="month", currency="EUR")
        assert monthly["buckets"][0]["total"]["sales"] == overview["total"]["gross_sales"]["reporting"]
        # scope: a DE+FR member sees only DE and FR, in every bucket
        member = view.token(s.account_id, role="member", permissions=["reports"], marketplaces=[DE, FR])
        scoped = await _series(view, s.account_id, "2026-09-09", "2026-09-15", member, currency="USD")
        assert {m["marketplace_id"] for m in scoped["marketplaces"]} == {DE, FR}
        assert all({c["marketplace_id"] for c in b["marketplaces"]} == {DE, FR} for b in scoped["buckets"])
        # bad input: 422 problems naming the field
        for params, field in (
            ({"granularity": "hour"}, "granularity"),
            ({"from": "2026-09-15", "to": "2026-09-01"}, "to"),
            ({"from": "2020-01-01", "to": "2026-09-01"}, "granularity"),
            ({"currency": "ZZZ"}, "currency"),
        ):
            response = await view.get(s.account_id, "overview/timeseries", **params)
            assert response.status_code == 422, (params, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["field"] == field


async def _how_converted(view: View, account_id: Any, order_id: str) -> tuple[tuple[Any, ...], Any]:
    """How the JP order of 2026-09-16 (``order_id``) shows in EUR: the JP overview's conversion and provisional
    counts, the order's conversion in the orders list, the day's provisional orders in the series (and the series)."""
    overview = await view.json(account_id, "overview", currency="EUR", marketplace="JP")
    listed = await view.json(account_id, "orders", order_id=order_id)
    series = await _series(view, account_id, "2026-09-16", "2026-09-16", currency="EUR")
    total = overview["total"]
    marks = (
        total["conversion"],
        total["provisional"],
        listed["orders"][0]["conversion"],
        series["buckets"][0]["total"]["provisional_orders"],
    )
    return marks, series


async def test_a_conversion_before_its_days_rate_is_provisional_then_final(make_db, kafka_bootstrap) -> None:
    """The last rates are of 2026-09-14: a JP order of 09-16 is converted at them, marked provisional in the
    overview, the orders list and the time series; once 09-16's rates arrive it is final (and re-converted)."""
    s = base_scenario()
    late = s.place(JP, utc(2026, 9, 16, 3), "5000", 1, "Shipped")
    async with view_of(make_db, kafka_bootstrap, *fx_events(), *s.events) as (view, pub):
        marks, _ = await _how_converted(view, s.account_id, late.amazon_order_id)
        assert marks == ("provisional", {"orders": 1, "refunds": 0}, "provisional", 1)
        # USD orders reported in USD need no rate: never provisional
        usd = await view.json(s.account_id, "overview", currency="USD", marketplace="US")
        assert usd["total"]["conversion"] == "complete"

        day = date(2026, 9, 16)
        await pub.publish((f"fx-{day}", regions.FxRatesPublished(date=day, rates=ecb_history()[day], source="ECB")))
        await view.caught_up()
        marks, series = await _how_converted(view, s.account_id, late.amazon_order_id)
        assert marks == ("complete", {"orders": 0, "refunds": 0}, "final", 0)
        jpy = ecb_history()[day]["JPY"]
        assert Decimal(series["buckets"][0]["total"]["sales"]) == (Decimal(5000) / jpy).quantize(Decimal("0.01"))
