"""The view's offers: per SKU its price in every marketplace, converted to the reporting currency at the latest
rates, flagged stale (older rate day, changed source price) or clamped; EGP without a rate is shown unconverted
and marked unavailable; a member sees only its marketplaces."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from unified_shared.contracts.listings import OfferPriceChanged, OfferStopped, OfferUpserted, TargetRule
from unified_shared.contracts.regions import FxRatesPublished

from .support import DE, JP, US, publisher, running_view

EG = "ARBP9OOSHTCHU"
UK = "A1F83G8C2ARO7P"
AT = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)


def day(date: str, usd: str) -> tuple[str, FxRatesPublished]:
    rates = {"USD": Decimal(usd), "JPY": Decimal("160.00"), "GBP": Decimal("0.85")}
    return f"fx-{date}", FxRatesPublished(date=dt.date.fromisoformat(date), rates=rates, source="test")


def priced(account: uuid.UUID, sku: str, market: str, currency: str, price: str, **extra: Any) -> OfferPriceChanged:
    rule = TargetRule(
        marketplace_id=market, currency=currency, percent=Decimal(0), fixed=Decimal(0), ending="none", floor=Decimal(1)
    )
    fields: dict[str, Any] = {
        "source_marketplace_id": US,
        "source_currency": "USD",
        "source_price": Decimal("24.99"),
        "fx_rate": Decimal("0.9"),
        "fx_rate_date": dt.date(2026, 11, 2),
        "cause": "fx",
        **extra,
    }
    return OfferPriceChanged(
        account_id=account,
        sku=sku,
        marketplace_id=market,
        currency=currency,
        price=Decimal(price),
        quantity=3,
        rule=rule,
        at=AT,
        **fields,
    )


async def test_offers_per_sku_converted_and_flagged(make_db: Any, kafka_bootstrap: str) -> None:
    account = uuid.uuid4()
    stream = f"listings-{account}"
    async with running_view(make_db, kafka_bootstrap) as view, publisher(make_db, kafka_bootstrap) as pub:
        own = OfferUpserted(
            account_id=account, sku="TEE", marketplace_id=US, currency="USD", price=Decimal("24.99"), quantity=3,
            status="Active", at=AT,
        )  # fmt: skip
        await pub.publish(
            day("2026-11-02", "1.2500"),
            (stream, own),
            (stream, priced(account, "TEE", DE, "EUR", "19.99")),
            (stream, priced(account, "TEE", JP, "JPY", "3000", fx_rate_date=dt.date(2026, 10, 30))),
            (stream, priced(account, "TEE", UK, "GBP", "25.00", clamped="ceiling")),
            (stream, priced(account, "TEE", EG, "EGP", "1200.00", fx_rate_date=None)),
            (stream, priced(account, "MUG", DE, "EUR", "9.99")),
            (stream, OfferStopped(account_id=account, sku="MUG", marketplace_id=DE, reason="DE closed", at=AT)),
        )
        await view.caught_up()
        got = await view.json(account, "offers", currency="USD")
        member = view.token(account, role="member", permissions=["listings"], marketplaces=[DE])
        scoped = await view.json(account, "offers", token=member, currency="EUR")
        no_permission = await view.get(
            account, "offers", token=view.token(account, role="member", permissions=["orders"])
        )
    assert got["fx_rate_date"] == "2026-11-02"
    tee = {m["marketplace"]: m for m in next(s for s in got["skus"] if s["sku"] == "TEE")["marketplaces"]}
    assert tee["US"]["converted"] == "24.99" and tee["US"]["kind"] == "own"
    assert tee["DE"]["converted"] == "24.99"  # 19.99 EUR x 1.25
    assert not tee["DE"]["stale"] and tee["DE"]["clamped"] is None
    assert tee["JP"]["converted"] == "23.44"  # 3000 / 160 x 1.25 = 23.4375, half-up
    assert tee["JP"]["stale"] and "2026-10-30" in tee["JP"]["stale_reasons"][0]
    assert tee["UK"]["clamped"] == "ceiling"
    assert (tee["EG"]["converted"], tee["EG"]["conversion"]) == (None, "unavailable")
    assert tee["EG"]["price"] == {"currency_code": "EGP", "amount": "1200.00"}
    mug = next(s for s in got["skus"] if s["sku"] == "MUG")["marketplaces"][0]
    assert (mug["status"], mug["stop_reason"]) == ("Stopped", "DE closed")
    assert [m["marketplace"] for s in scoped["skus"] for m in s["marketplaces"]] == ["DE", "DE"]
    assert no_permission.status_code == 403
