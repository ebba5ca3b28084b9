"""The seller's web app in a real browser (Debian's chromium driven by Playwright) against the whole platform,
every service its own process: sign in through identity, the overview's numbers equal the API's, reply to an
overdue JP thread and see it leave the overdue list, download the invoice CSV, invite a member and accept from
the delivered .eml, see the member's narrower pages, change her scope and remove her. Every page visited is
saved as a screenshot into ``SCREENSHOT_DIR`` (default ``services/web/screenshots/``, ignored by git).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from unified_demo import expected
from unified_demo.driver import Driver, Operations, Session, _token_in_mail_folder
from unified_demo.scenario import Scenario, ScenarioConfig, build
from unified_shared import catalog
from unified_shared.contracts.listings import OfferPriceChanged, OfferUpserted, TargetRule
from unified_shared.envelope import Envelope
from unified_shared.kafka import make_producer
from unified_shared.topics import LISTINGS_OFFERS
from unified_web import formatting

from .platform_processes import Platform
from .test_e2e import endpoints_for

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", Path(__file__).resolve().parents[1] / "services/web/screenshots"))
JP_THREAD = "th-web-jp-overdue"
MEMBER_PASSWORD = "Lena's own long passphrase 7"


def eventually(check: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Wait for a condition with a deadline (the views are projections: they catch up, not at once)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.fixture
def platform(infra: Any, tmp_path: Path) -> Iterator[Platform]:
    plat = Platform(infra.kafka, infra.pg_admin_dsn, tmp_path)
    plat.plan()
    # The shared topics keep every other test's history: this view starts at their end.
    plat.services["seller_view"].env["VIEW_ORIGIN"] = "latest"
    plat.create_databases()
    try:
        plat.start_all()
        yield plat
    finally:
        plat.stop_all()
        plat.drop_databases()


async def _seed(plat: Platform) -> tuple[Session, Scenario]:
    """A small seller story through the public APIs, plus one JP buyer message that is overdue now."""
    scenario = build(ScenarioConfig(seed=5, days=61, orders_per_day=2))
    ep = endpoints_for(plat)
    async with httpx.AsyncClient(timeout=60.0) as http:
        driver = Driver(ep, scenario, http, lambda _: None)
        ops = Operations(ep, scenario, http, lambda _: None)
        await driver.wait_ready()
        await ops.import_fx_rates()
        session = await driver.register_and_sign_in("web")
        await driver.open_marketplaces(session)
        await driver.ingest_orders(session)
        await driver.ingest_messages(session)
        received = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
        answer = await http.post(
            f"{ep.messages['FE']}/messaging/v1/threads/{JP_THREAD}/buyer-messages",
            json={
                "marketplace_id": catalog.resolve("JP").marketplace_id,
                "message_id": "m-web-jp-1",
                "subject": "Where is my parcel?",
                "body": "It has not arrived yet.",
                "received_at": received.isoformat(),
            },
            headers=session.owner.auth,
        )
        assert answer.status_code == 201, answer.text
        months = expected.periods(scenario)
        await ops.wait_for_billing_inputs(session, months)
        await ops.close_periods(session, months)
        invoices = sum(len(c) for c in expected.invoice_currencies(scenario).values())
        await ops.wait_for_view(session, len(scenario.final_orders()), invoices)
    return session, scenario


async def _publish_offers(kafka: str, account_id: Any) -> None:
    """The seller's own US offer and the DE offer a link priced from it, as the listings service publishes them
    (this platform runs no listings service: the web app reads offers from the unified view)."""
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    us, de = catalog.resolve("US").marketplace_id, catalog.resolve("DE").marketplace_id
    rule = TargetRule(marketplace_id=de, currency="EUR", percent=Decimal(10), fixed=Decimal(0), ending=".99",
                      floor=Decimal("9.99"))  # fmt: skip
    events = [
        OfferUpserted(account_id=account_id, sku="NW-TEE-01", marketplace_id=us, currency="USD",
                      price=Decimal("24.99"), quantity=5, status="Active", at=at),
        OfferPriceChanged(account_id=account_id, sku="NW-TEE-01", marketplace_id=de, currency="EUR",
                          price=Decimal("24.99"), quantity=5, source_marketplace_id=us, source_currency="USD",
                          source_price=Decimal("24.99"), fx_rate=Decimal("0.8950948801"),
                          fx_rate_date=date(2026, 10, 30), rule=rule, cause="source_price", at=at),
    ]  # fmt: skip
    producer = make_producer(kafka, client_id="web-test-offers")
    await producer.start()
    try:
        for sequence, event in enumerate(events, start=1):
            envelope = Envelope(
                id=uuid.uuid4(), source="/services/listings", type=event.ce_type(), time=datetime.now(UTC),
                subject=f"account:{account_id}", partitionkey=event.partition_key(), sequence=sequence,
            )  # fmt: skip
            await producer.send_and_wait(
                LISTINGS_OFFERS, value=event.to_json_bytes(), key=event.partition_key().encode(),
                headers=envelope.to_headers(),
            )  # fmt: skip
    finally:
        await producer.stop()


def test_the_web_app_in_a_real_browser(platform: Platform) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    expect.set_options(timeout=30_000)  # a loaded CI machine answers slowly; the assertions still retry
    session, scenario = asyncio.run(_seed(platform))
    asyncio.run(_publish_offers(platform.kafka, session.account_id))
    web = platform.services["web"].url
    api = endpoints_for(platform)
    SHOTS.mkdir(parents=True, exist_ok=True)

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def api_get(path: str, **params: Any) -> Any:
        answer = httpx.get(path, params=params, headers=session.owner.auth, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json() if "json" in answer.headers.get("content-type", "") else answer.text

    def sign_in(page: Page, email: str, password: str) -> None:
        page.goto(f"{web}/")
        expect(page.locator("input[name=password]")).to_be_visible()  # identity's sign-in form
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{web}/")

    def sign_out(page: Page) -> None:
        page.click("text=Sign out")
        page.wait_for_url(re.compile(r"/signed-out$"))
        expect(page.locator("h1")).to_have_text("You are signed out")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(locale="en-US", accept_downloads=True)
        page = context.new_page()
        csp_errors: list[str] = []
        page.on(
            "console", lambda m: csp_errors.append(f"{page.url}: {m.text}") if "Content Security" in m.text else None
        )

        # -- sign in through identity; the overview equals the API's ----------------------------------------
        page.goto(f"{web}/")
        expect(page.locator("input[name=password]")).to_be_visible()
        shot(page, "01-identity-sign-in")
        page.fill("input[name=email]", session.owner_email)
        page.fill("input[name=password]", session.password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{web}/")
        overview = api_get(f"{api.seller_view}/v1/accounts/{session.account_id}/overview", currency="USD")
        total = page.get_by_test_id("total-gross")
        expect(total).to_have_attribute("data-value", overview["total"]["gross_sales"]["reporting"])
        expect(total).to_have_text(formatting.money(overview["total"]["gross_sales"]["reporting"], "USD", "en_US"))
        expect(page.get_by_test_id("total-orders")).to_have_attribute("data-value", str(overview["total"]["orders"]))
        for market in overview["marketplaces"]:
            row = page.locator(f"tr[data-marketplace={market['code']}]")
            expect(row.locator("[data-col=gross]")).to_have_attribute("data-value", market["gross_sales"]["reporting"])
            expect(row.locator("[data-col=net]")).to_have_attribute("data-value", market["net_sales"]["reporting"])
            expect(row.locator("[data-col=orders]")).to_have_attribute("data-value", str(market["orders"]))
        # The chart: one dataset per marketplace whose day buckets add up to the marketplace's gross sales.
        expect(page.locator("#sales-chart")).to_be_visible()
        page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('#sales-chart'))")
        chart = json.loads(page.locator("#sales-chart").get_attribute("data-chart") or "{}")
        sums = {d["label"]: sum((Decimal(v) for v in d["data"]), Decimal(0)) for d in chart["datasets"]}
        assert sums == {m["code"]: Decimal(m["gross_sales"]["reporting"]) for m in overview["marketplaces"]}
        shot(page, "02-overview")
        page.select_option("#granularity", "week")
        expect(page).to_have_url(re.compile(r"granularity=week"))
        page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('#sales-chart'))")
        page.select_option("#currency", "EUR")  # htmx swaps the figures in place
        eur = api_get(f"{api.seller_view}/v1/accounts/{session.account_id}/overview", currency="EUR")
        expect(total).to_have_attribute("data-value", eur["total"]["gross_sales"]["reporting"])
        expect(page).to_have_url(re.compile(r"currency=EUR"))

        # -- offers: each SKU's price per marketplace, as the unified view answers ---------------------------
        offers_path = f"{api.seller_view}/v1/accounts/{session.account_id}/offers"
        eventually(lambda: len(api_get(offers_path, currency="USD")["skus"]) == 1, "the offers in the view")
        view_offers = api_get(offers_path, currency="USD")["skus"][0]["marketplaces"]
        page.click("nav >> text=Offers")
        table = page.get_by_test_id("offers-table")
        expect(table.locator("tbody tr[data-sku]")).to_have_count(len(view_offers))
        for offer in view_offers:
            row = table.locator(f"tr[data-sku=NW-TEE-01][data-marketplace={offer['marketplace']}]")
            expect(row.locator("td.num").first).to_have_attribute("data-value", offer["price"]["amount"])
            expect(row).to_contain_text("international" if offer["kind"] == "linked" else "own")
        shot(page, "03b-offers")

        # -- single sign-on: without this app's cookie, identity answers at once (no password form) ----------
        context.clear_cookies(name="unified_web")
        page.goto(f"{web}/orders")
        page.wait_for_url(f"{web}/orders")
        expect(page.get_by_test_id("orders")).to_be_visible()
        shot(page, "03-orders")
        page.select_option("#f-marketplace", "JP")
        page.click("text=Filter")
        expect(page).to_have_url(re.compile(r"marketplace=JP"))
        first = page.get_by_test_id("orders").locator("tbody tr a").first
        first.click()
        expect(page.get_by_test_id("order-status")).to_be_visible()
        expect(page.get_by_test_id("status-history").locator("li").first).to_have_attribute("data-kind", "placed")
        shot(page, "04-order")
        # An order that changed status: its page lists each step with its time, as seller_view records them.
        changed = scenario.updates[-1]
        market = catalog.resolve(str(changed.payload["MarketplaceId"])).code
        detail = api_get(f"{api.seller_view}/v1/accounts/{session.account_id}/orders/{changed.order_id}")
        history = detail["status_history"]
        assert history[0]["kind"] == "placed" and "status_changed" in [h["kind"] for h in history], history
        last_status = [h["status"] for h in history if h["kind"] != "refunded"][-1]
        assert last_status == scenario.final_orders()[changed.order_id]["OrderStatus"] == detail["order_status"]
        page.goto(f"{web}/orders/{market}/{changed.order_id}")
        steps = page.get_by_test_id("status-history").locator("li")
        expect(steps).to_have_count(len(history))
        for i, h in enumerate(history):
            expect(steps.nth(i)).to_have_attribute("data-kind", h["kind"])
            expect(steps.nth(i)).to_have_attribute("data-at", h["at"])
            if h["kind"] == "status_changed":
                expect(steps.nth(i)).to_contain_text(f"{h['from_status']} → {h['status']}")
        shot(page, "04-order-history")

        # -- reply to the overdue JP thread; it leaves the overdue list --------------------------------------
        page.goto(f"{web}/messages")
        jp = page.locator(f"tr[data-thread={JP_THREAD}]")
        expect(jp).to_have_attribute("data-status", "overdue")
        expect(jp).to_contain_text("JP")
        overdue_before = int(page.get_by_test_id("count-overdue").inner_text())
        shot(page, "05-messages")
        jp.locator("a").click()
        expect(page.locator("h1")).to_have_text("Where is my parcel?")
        shot(page, "06-thread")
        page.fill("#reply-body", "Shipped today from Osaka; tracking follows.")
        page.click("text=Send reply")
        page.wait_for_url(re.compile(r"/messages\?done=replied"))

        def thread_gone() -> bool:
            page.reload()
            return page.locator(f"tr[data-thread={JP_THREAD}]").count() == 0

        eventually(thread_gone, "the replied JP thread to leave the overdue list")
        assert int(page.get_by_test_id("count-overdue").inner_text()) == overdue_before - 1
        thread = httpx.get(
            f"{api.messages['FE']}/messaging/v1/threads/{JP_THREAD}", headers=session.owner.auth, timeout=30
        ).json()
        assert thread["state"] == "replied"

        # -- marketplaces: open one and start its plan -------------------------------------------------------
        page.goto(f"{web}/marketplaces")
        shot(page, "07-marketplaces")
        page.select_option("#open-marketplace", "AU")
        page.click("#open-form button")
        page.wait_for_url(re.compile(r"done=open"))
        page.click("button[aria-label='Start plan in AU']")
        page.wait_for_url(re.compile(r"done=start-subscription"))
        expect(page.locator("tr[data-marketplace=AU]")).to_contain_text("Professional")

        # -- billing: invoices, cap savings, CSV download ----------------------------------------------------
        page.goto(f"{web}/billing")
        expect(page.get_by_test_id("savings")).to_be_visible()
        shot(page, "08-billing")
        with page.expect_download() as download:
            page.get_by_test_id("csv").click()
        csv_path = SHOTS / "invoices.csv"
        download.value.save_as(csv_path)
        assert csv_path.read_text() == api_get(f"{api.billing}/v1/accounts/{session.account_id}/invoices.csv")
        assert "INV-2026-10-JPY" in csv_path.read_text()

        # -- every form needs the session's CSRF token: a forged POST (the browser's cookie, no token) fails --
        forged = page.request.post(
            f"{web}/team/invitations",
            form={"email": "mallory@example.com", "role": "member", "permissions": "orders", "all_marketplaces": "1"},
            max_redirects=0,
        )
        assert forged.status == 403, forged.status
        headers = page.goto(f"{web}/team").headers  # type: ignore[union-attr]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "mallory@example.com" not in page.content()

        # -- readable on a phone ------------------------------------------------------------------------------
        phone = browser.new_context(
            viewport={"width": 390, "height": 844}, locale="en-US", storage_state=context.storage_state()
        )
        mobile = phone.new_page()
        for path, name in (("/", "14-phone-overview"), ("/messages", "15-phone-messages")):
            mobile.goto(f"{web}{path}")
            expect(mobile.get_by_role("navigation", name="Main")).to_be_visible()
            assert mobile.evaluate("document.documentElement.scrollWidth") <= 390  # no page-wide sideways scroll
            shot(mobile, name)
        phone.close()

        # -- team: invite a member scoped to DE and FR -------------------------------------------------------
        member_email = "lena+web@northwind-outfitters.example"
        page.goto(f"{web}/team")
        page.fill("#inv-name", "Lena Berg")
        page.fill("#inv-email", member_email)
        page.uncheck("#invite-form input[name=permissions][value=reports]")
        page.check("#invite-form input[name=marketplaces][value=DE]")
        page.check("#invite-form input[name=marketplaces][value=FR]")
        page.click("text=Send invitation")
        page.wait_for_url(re.compile(r"done=invited"))
        expect(page.get_by_test_id("invitations")).to_contain_text(member_email)
        shot(page, "09-team")
        sign_out(page)
        shot(page, "10-signed-out")
        # Signing out here ended identity's single sign-on session too: the password form again.
        page.goto(f"{web}/")
        expect(page.locator("input[name=password]")).to_be_visible()

        # -- the member accepts from the delivered .eml and sees only what the token allows ------------------
        mail = platform.workdir / "mail"
        eventually(lambda: _token_in_mail_folder(mail, member_email) is not None, "the invitation mail")
        token = _token_in_mail_folder(mail, member_email)
        page.goto(f"{platform.services['identity'].url}/invitations/accept?token={token}")
        page.fill("input[name=password]", MEMBER_PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Welcome to the team")
        sign_in(page, member_email, MEMBER_PASSWORD)
        rows = page.get_by_test_id("overview-table").locator("tbody tr[data-marketplace]")
        expect(rows).to_have_count(2)
        assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.marketplace)")) == ["DE", "FR"]
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Billing")).to_have_count(0)
        expect(nav.get_by_role("link", name="Team")).to_have_count(0)
        expect(nav.get_by_role("link", name="Offers")).to_have_count(0)  # neither listings nor reports
        shot(page, "11-member-overview")
        page.goto(f"{web}/orders")
        markets = page.get_by_test_id("orders").locator("tbody tr td:nth-child(2)").all_inner_texts()
        assert markets and set(markets) <= {"DE", "FR"}
        for path, name in (("/billing", "12-member-billing"), ("/team", "13-member-team")):
            answer = page.goto(f"{web}{path}")
            assert answer is not None and answer.status == 403
            expect(page.get_by_test_id("not-allowed")).to_be_visible()
            shot(page, name)
        # An order outside the scope, asked for by its address: not allowed, never shown.
        all_orders = api_get(f"{api.seller_view}/v1/accounts/{session.account_id}/orders")["orders"]
        outside = next(o for o in all_orders if o["marketplace"] not in ("DE", "FR"))
        answer = page.goto(f"{web}/orders/{outside['marketplace']}/{outside['amazon_order_id']}")
        assert answer is not None and answer.status in (403, 404)
        assert outside["amazon_order_id"] not in page.locator("main").inner_text()
        sign_out(page)

        # -- the owner narrows Lena to DE, then removes her ------------------------------------------------
        sign_in(page, session.owner_email, session.password)
        page.goto(f"{web}/team")
        lena = page.locator(f"tr[data-email='{member_email}']")
        expect(lena).to_contain_text("DE, FR")
        lena.locator("summary").click()
        lena.locator("input[name=marketplaces][value=FR]").uncheck()
        lena.locator("text=Save").click()
        page.wait_for_url(re.compile(r"done=changed"))
        expect(page.locator(f"tr[data-email='{member_email}'] td").nth(3)).to_have_text("DE")
        page.locator(f"button[aria-label='Remove {member_email}']").click()
        page.wait_for_url(re.compile(r"done=removed"))
        expect(page.locator(f"tr[data-email='{member_email}']")).to_have_count(0)
        browser.close()
    assert csp_errors == [], csp_errors


def test_overview_money_is_formatted_per_locale() -> None:
    """The figures the browser test compares: babel's CLDR formats (JPY without decimals)."""
    assert formatting.money("1234.5", "USD", "en_US") == "$1,234.50"
    assert formatting.money(Decimal("1234.5"), "EUR", "de_DE") == "1.234,50\xa0€"
    assert formatting.money("4900", "JPY", "ja_JP") == "￥4,900"
