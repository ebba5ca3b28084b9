"""Day summaries through the real consumer (event store -> outbox relay -> Kafka -> seller_view): a random
history of orders, refunds, status changes and FX days arriving late and revised; then a correction of a
day that already has orders (revision + 1). After each, the API's overview and time series read from the
kept summaries equal the Python reference over every order, and the kept rows equal rows recomputed from
scratch."""

from __future__ import annotations

import json
import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

import asyncpg

from unified_seller_view import overview_queries, summaries
from unified_shared.contracts import orders, regions
from unified_shared.events import Event

from .support import View, publisher, running_view
from .test_summaries import DAYS, T0, history


def _stream(event: Event) -> str:
    if isinstance(event, regions.FxRatesPublished):
        return f"fx-{event.date.isoformat()}"
    assert isinstance(event, orders.OrderPlaced | orders.OrderStatusChanged | orders.OrderRefunded)
    return f"order-{event.account_id}-{event.amazon_order_id}"


async def _check(view: View, accounts: list[uuid.UUID]) -> None:
    conn = await asyncpg.connect(view.dsn)
    try:
        schema = await conn.fetchval(
            "SELECT g.schema_name FROM view_pointer p JOIN view_generations g USING (generation)"
        )
        # only this test's accounts: the shared topics may carry other tests' events meanwhile
        tx = conn.transaction(isolation="repeatable_read")
        await tx.start()
        try:
            await conn.execute(f"SET LOCAL search_path TO {schema}, public")
            sql = """SELECT row_to_json(s)::text AS j FROM order_day_summaries s
                     WHERE account_id = ANY($1::uuid[]) ORDER BY 1"""
            kept = [r["j"] for r in await conn.fetch(sql, accounts)]
            days = await conn.fetch(
                """SELECT DISTINCT account_id, (purchase_date AT TIME ZONE 'UTC')::date AS d FROM orders
                   WHERE account_id = ANY($1::uuid[])""",
                accounts,
            )
            await summaries.refresh_days(conn, [(r["account_id"], r["d"]) for r in days])
            assert [r["j"] for r in await conn.fetch(sql, accounts)] == kept  # kept == recomputed from scratch
        finally:
            await tx.rollback()
        for account in accounts:
            for currency in ("USD", "EUR", "GBP"):
                got = await view.json(account, "overview", currency=currency)
                async with conn.transaction(readonly=True, isolation="repeatable_read"):
                    await conn.execute(f"SET LOCAL search_path TO {schema}, public")
                    ref = await overview_queries.overview(
                        conn, overview_queries.OverviewQuery(account, currency), in_python=True
                    )
                assert json.dumps(got, sort_keys=True) == json.dumps(ref, sort_keys=True), currency
    finally:
        await conn.close()


async def test_summaries_through_the_consumer_follow_late_and_revised_rates(make_db, kafka_bootstrap) -> None:
    rng = random.Random(11)
    accounts = [uuid.uuid4(), uuid.uuid4()]
    events = history(rng, accounts, 40)
    async with running_view(make_db, kafka_bootstrap) as view, publisher(make_db, kafka_bootstrap) as pub:
        await pub.publish(*[(_stream(e), e) for e in events])
        await view.caught_up()
        await _check(view, accounts)
        # a correction (revision + 1) of a USD rate day that the USD overview used for some orders
        before = await view.json(accounts[0], "overview", currency="USD")
        used = next(r for r in before["fx_rates_used"] if r["currency"] == "USD")
        day = date.fromisoformat(used["rate_date"])
        latest = max(
            (e for e in events if isinstance(e, regions.FxRatesPublished) and e.date == day), key=lambda e: e.revision
        )
        corrected = regions.FxRatesPublished(
            date=day,
            rates={**latest.rates, "USD": latest.rates["USD"] * 3},
            source="test",
            revision=latest.revision + 1,
        )
        await pub.publish((_stream(corrected), corrected))
        await view.caught_up()
        await _check(view, accounts)
        after = await view.json(accounts[0], "overview", currency="USD")
        assert after["total"]["gross_sales"] != before["total"]["gross_sales"]  # the correction was applied
        assert any(
            r["rate_date"] == used["rate_date"] and r["revision"] == used["revision"] + 1
            for r in after["fx_rates_used"]
        )
        series = await view.json(
            accounts[0],
            "overview/timeseries",
            granularity="day",
            currency="USD",
            **{
                "from": (T0.date() - timedelta(days=2)).isoformat(),
                "to": (T0.date() + timedelta(days=DAYS + 2)).isoformat(),
            },
        )
        summed = sum(Decimal(b["total"]["sales"]) for b in series["buckets"])
        overview = await view.json(accounts[0], "overview", currency="USD")
        assert summed == Decimal(overview["total"]["gross_sales"]["reporting"])
