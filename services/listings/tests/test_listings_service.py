"""The listings service against the real PostgreSQL and Kafka: own offers, links to targets with rules, prices
that follow the source price, the rule and each FX day, targets that must be open and stop when closed, the
events on listings.offers.v1, permissions and scope, and refused input naming its field."""

from __future__ import annotations

import uuid
from typing import Any

from unified_shared.testing import TopicWatcher
from unified_shared.topics import LISTINGS_OFFERS

from .support import DE, EG, FR, JP, UK, US, RunningListings, closed, feed, opened, rates

LINK = {
    "sku": "*",
    "targets": [
        {"marketplace": "DE", "percent": "10", "fixed": "0", "ending": ".99", "floor": "9.99", "ceiling": "199.00"},
        {"marketplace": "JP", "percent": "0", "fixed": "0", "ending": "whole", "floor": "1000"},
        {
            "marketplace": "UK",
            "percent": "5",
            "ending": "none",
            "floor": "30.00",
            "excluded_skus": ["MUG-1"],
            "manual_prices": {"TEE-2": "11.50"},
        },
    ],
}


def by_place(offers: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["sku"], o["marketplace"]): o for o in offers}


async def test_targets_priced_from_the_source_and_repriced_on_source_rule_and_fx(
    listings: RunningListings, kafka_bootstrap: str
) -> None:
    account = uuid.uuid4()
    await feed(listings.pool, *opened(account, US, DE, JP, UK), rates("2026-10-01"))
    async with TopicWatcher(kafka_bootstrap, [LISTINGS_OFFERS]) as watcher, listings.client(account) as http:
        assert (await http.put("/listings/v1/links/US", json=LINK)).status_code == 200
        for sku, price in (("TEE-2", "24.99"), ("MUG-1", "12.00")):
            put = await http.put(f"/listings/v1/offers/US/{sku}", json={"price": price, "quantity": 7})
            assert put.status_code == 200, put.text
        offers = by_place((await http.get("/listings/v1/offers")).json()["offers"])
        # 24.99 USD / 1.10 x 1.10 = 24.99 EUR, .99 ending; x 160 / 1.10 = 3634.9 -> 3635 JPY
        assert offers[("TEE-2", "DE")]["price"] == "24.99"
        assert offers[("TEE-2", "JP")]["price"] == "3635"
        assert (offers[("TEE-2", "UK")]["price"], offers[("TEE-2", "UK")]["status"]) == ("11.50", "Active")
        # 12.00 USD -> 10.909 EUR + 10 % = 12.00 -> nearest .99: 11.99 EUR; the excluded SKU never appears in UK
        assert offers[("MUG-1", "DE")]["price"] == "11.99"
        assert ("MUG-1", "UK") not in offers
        assert offers[("TEE-2", "DE")]["fx_rate_date"] == "2026-10-01"

        # a new FX day re-prices every linked offer and names its rate and date
        await feed(listings.pool, rates("2026-10-02", usd="1.2000"))
        offers = by_place((await http.get("/listings/v1/offers")).json()["offers"])
        assert offers[("TEE-2", "DE")]["price"] == "22.99"  # 24.99 / 1.2 x 1.1 = 22.9075
        assert offers[("TEE-2", "DE")]["fx_rate_date"] == "2026-10-02"

        # the rule changes: +30 % and a ceiling of 25.00 -> clamped
        rule = {"sku": "TEE-2", "targets": [{**LINK["targets"][0], "percent": "30", "ceiling": "25.00"}]}  # type: ignore[index]
        assert (await http.put("/listings/v1/links/US", json=rule)).status_code == 200
        tee_de = by_place((await http.get("/listings/v1/offers", params={"sku": "TEE-2"})).json()["offers"])
        assert (tee_de[("TEE-2", "DE")]["price"], tee_de[("TEE-2", "DE")]["clamped"]) == ("25.00", "ceiling")
        # the SKU's own link has no JP or UK target: those offers stop
        assert tee_de[("TEE-2", "JP")]["status"] == "Stopped"

        history = (await http.get("/listings/v1/offers/DE/TEE-2/history")).json()["events"]
        changes = [e for e in history if e["type"].endswith("OfferPriceChanged.v1")]
        assert [(e["price"], e["previous"], e["cause"]) for e in changes] == [
            ("24.99", None, "source_price"),
            ("22.99", "24.99", "fx"),
            ("25.00", "22.99", "rule"),
        ]
        assert (changes[1]["fx_rate"], changes[1]["fx_rate_date"]) == ("0.8333333333", "2026-10-02")
        published = await watcher.collect(
            lambda r: r.key == str(account) and r.value.get("marketplace_id") == DE and r.value.get("sku") == "TEE-2",
            count=3,
            timeout_s=30,
        )
    # the relay published the offer's stream in order, keyed by the account
    assert [(r.headers["ce_type"], r.value["price"]) for r in published] == [
        ("unifiedseller.listings.OfferPriceChanged.v1", "24.99"),
        ("unifiedseller.listings.OfferPriceChanged.v1", "22.99"),
        ("unifiedseller.listings.OfferPriceChanged.v1", "25.00"),
    ]


async def test_a_corrected_fx_day_leaves_every_offer_naming_the_rate_it_is_priced_at(
    listings: RunningListings,
) -> None:
    """ECB corrects a day (same date, next revision): where the price moves and where it stays, the offer names
    the corrected rate (it kept the first revision's where the price stayed)."""
    account = uuid.uuid4()
    await feed(listings.pool, *opened(account, US, DE, JP), rates("2026-10-01"))
    async with listings.client(account) as http:
        link = {"sku": "*", "targets": LINK["targets"][:2]}  # type: ignore[index]
        assert (await http.put("/listings/v1/links/US", json=link)).status_code == 200
        put = await http.put("/listings/v1/offers/US/TEE-2", json={"price": "24.99", "quantity": 7})
        assert put.status_code == 200, put.text
        await feed(listings.pool, rates("2026-10-01", usd="1.1010", revision=2))
        offers = by_place((await http.get("/listings/v1/offers")).json()["offers"])
        history = (await http.get("/listings/v1/offers/DE/TEE-2/history")).json()["events"]
    de, jp = offers[("TEE-2", "DE")], offers[("TEE-2", "JP")]
    # 24.99 / 1.101 x 1.10 = 24.967 -> 24.99 as before, at 1 / 1.101 EUR per USD
    assert (de["price"], de["fx_rate"], de["fx_rate_date"]) == ("24.99", "0.9082652134", "2026-10-01")
    # 24.99 x 160 / 1.101 = 3631.6 -> 3632 JPY (3635 at the first revision)
    assert (jp["price"], jp["fx_rate"]) == ("3632", "145.3224341508")
    assert [(e["price"], e["cause"], e["fx_rate"]) for e in history if e["type"].endswith("OfferPriceChanged.v1")] == [
        ("24.99", "source_price", "0.9090909091"),
        ("24.99", "fx", "0.9082652134"),
    ]


async def test_targets_must_be_open_with_active_listings_and_a_closing_target_stops(listings: RunningListings) -> None:
    account = uuid.uuid4()
    await feed(listings.pool, *opened(account, US, DE), rates("2026-10-01"))
    link = {
        "targets": [LINK["targets"][0], {**LINK["targets"][1], "marketplace": "FR", "ending": "none", "floor": "5"}]
    }  # type: ignore[index]
    async with listings.client(account) as http:
        refused = await http.put("/listings/v1/links/US", json=link)
        assert refused.status_code == 422
        assert refused.json()["field"] == "targets[1].marketplace_id"
        assert "FR" in refused.json()["detail"] and "not opened" in refused.json()["detail"]
        assert (await http.put("/listings/v1/links/US", json={"targets": [LINK["targets"][0]]})).status_code == 200
        await http.put("/listings/v1/offers/US/TEE-2", json={"price": "24.99", "quantity": 3})
        await feed(listings.pool, closed(account, DE))
        offer = by_place((await http.get("/listings/v1/offers")).json()["offers"])[("TEE-2", "DE")]
        assert (offer["status"], offer["stop_reason"]) == ("Stopped", "DE is not open with active listings")
        # opened again with active listings: priced again
        await feed(listings.pool, *opened(account, DE))
        offer = by_place((await http.get("/listings/v1/offers")).json()["offers"])[("TEE-2", "DE")]
        assert (offer["status"], offer["price"]) == ("Active", "24.99")


async def test_a_currency_without_a_rate_stops_nothing_it_never_priced_and_guesses_nothing(
    listings: RunningListings,
) -> None:
    account = uuid.uuid4()
    await feed(listings.pool, *opened(account, US, EG), rates("2026-10-01"))
    target = {"marketplace": "EG", "ending": "none", "floor": "100.00"}
    async with listings.client(account) as http:
        assert (await http.put("/listings/v1/links/US", json={"targets": [target]})).status_code == 200
        await http.put("/listings/v1/offers/US/TEE-2", json={"price": "24.99", "quantity": 3})
        offers = by_place((await http.get("/listings/v1/offers")).json()["offers"])
    assert ("TEE-2", "EG") not in offers  # no EGP rate: no price at all, never a guess


async def test_permission_scope_and_refused_input(listings: RunningListings) -> None:
    account = uuid.uuid4()
    await feed(listings.pool, *opened(account, US, DE), rates("2026-10-01"))
    async with listings.client(account, role="member", permissions=["orders"]) as http:
        assert (await http.put("/listings/v1/offers/US/A", json={"price": "1.00"})).status_code == 403
    async with listings.client(account, role="member", permissions=["listings"], marketplaces=[DE]) as http:
        assert (await http.put("/listings/v1/offers/US/A", json={"price": "1.00"})).status_code == 403
        assert (await http.put("/listings/v1/links/US", json={"targets": [LINK["targets"][0]]})).status_code == 403
        assert (await http.put("/listings/v1/offers/DE/A", json={"price": "1.00"})).status_code == 200
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/listings/v1/offers/US/TEE", {"price": "12.999"}, "price"),
        ("/listings/v1/offers/US/TEE", {"price": "0"}, "price"),
        ("/listings/v1/offers/US/TEE", {"price": "1.00", "quantity": -1}, "quantity"),
        ("/listings/v1/offers/XX/TEE", {"price": "1.00"}, "marketplace"),
        ("/listings/v1/offers/US/%00bad", {"price": "1.00"}, "sku"),
        ("/listings/v1/links/US", {"targets": [{**LINK["targets"][1], "ending": ".99"}]}, "targets[0].ending"),  # type: ignore[dict-item]
        ("/listings/v1/links/US", {"targets": [{**LINK["targets"][0], "floor": "0"}]}, "targets[0].floor"),  # type: ignore[dict-item]
        ("/listings/v1/links/US", {"targets": [{**LINK["targets"][0], "marketplace": "US"}]}, "targets[0].marketplace"),  # type: ignore[dict-item]
        ("/listings/v1/links/US", {"targets": "DE"}, "targets"),
    ]
    async with listings.client(account) as http:
        for path, body, field in cases:
            response = await http.put(path, json=body)
            assert response.status_code == 422, (path, body, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["field"] == field, response.json()
    assert FR and UK and JP  # the catalogue constants stay in use across tests
