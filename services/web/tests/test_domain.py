"""The pages' pure rules: what a token shows, filters and forms read (bad input names its field), cap savings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from urllib.parse import urlencode
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from unified_shared import catalog
from unified_shared.auth import Principal
from unified_web import account, domain
from unified_web.web import safe_return_to

DE, FR = catalog.resolve("DE").marketplace_id, catalog.resolve("FR").marketplace_id


def principal(role: str = "member", permissions: set[str] | None = None, scope: object = "*") -> Principal:
    return Principal(
        user_id=uuid4(),
        account_id=uuid4(),
        role=role,
        permissions=frozenset(permissions or set()),
        marketplaces=scope,  # type: ignore[arg-type]
        token_id="t",
    )


def test_the_owner_sees_every_page() -> None:
    owner = principal("owner")
    assert [p.path for p in domain.navigation(owner)] == [
        "/",
        "/orders",
        "/offers",
        "/messages",
        "/marketplaces",
        "/team",
        "/billing",
    ]


def test_a_member_sees_only_what_its_permissions_name() -> None:
    member = principal("member", {"messages"}, frozenset({DE, FR}))
    assert [p.path for p in domain.navigation(member)] == ["/messages", "/marketplaces"]
    assert domain.scope_codes(member) == ["DE", "FR"]
    assert not domain.may_see(member, "/billing")
    assert not domain.may_see(member, "/team")
    assert not domain.may_change_marketplaces(member)


def test_offers_need_listings_or_reports() -> None:
    assert domain.may_see(principal("member", {"listings"}), "/offers")
    assert domain.may_see(principal("member", {"reports"}), "/offers")
    assert not domain.may_see(principal("member", {"orders", "messages"}), "/offers")


def test_an_admin_manages_the_team_but_not_billing() -> None:
    admin = principal("admin", {"orders", "reports"})
    assert domain.may_see(admin, "/team") and domain.may_see(admin, "/")
    assert not domain.may_see(admin, "/billing")


def test_order_filters_make_the_view_query() -> None:
    filters, params = domain.order_filters(
        {"marketplace": "uk", "status": "Shipped", "from": "2026-09-01", "to": "2026-09-30", "page_size": "50"}
    )
    assert params == {
        "marketplace": "UK",
        "status": "Shipped",
        "purchased_after": "2026-09-01T00:00:00+00:00",
        "purchased_before": "2026-09-30T23:59:59.999999+00:00",
        "max_results": "50",
    }
    assert filters.as_query() == {
        "marketplace": "UK",
        "status": "Shipped",
        "from": "2026-09-01",
        "to": "2026-09-30",
        "page_size": "50",
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"marketplace": "XX"}, "marketplace"),
        ({"status": "Lost"}, "status"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-10-02", "to": "2026-10-01"}, "to"),
        ({"order_id": "<script>"}, "order_id"),
        ({"page_size": "1000"}, "page_size"),
        ({"page_size": "\u00b2"}, "page_size"),  # a digit to str.isdigit, not to int(): was a 500
        ({"order_id": "\u0661\u0662-3"}, "order_id"),  # Arabic-Indic digits are not an order ID
        ({"next_token": "x" * 3000}, "next_token"),
    ],
)
def test_bad_filters_name_their_field(query: dict[str, str], field: str) -> None:
    with pytest.raises(domain.FormError) as caught:
        domain.order_filters(query)
    assert caught.value.field == field


@given(
    st.dictionaries(
        st.sampled_from(["marketplace", "status", "from", "to", "order_id", "page_size", "next_token"]),
        st.text(max_size=60),
    )
)
def test_any_query_gives_filters_or_a_form_error(query: dict[str, str]) -> None:
    """Whatever a browser sends, the page answers with results or a named field: never an exception else."""
    try:
        _, params = domain.order_filters(query)
    except domain.FormError as exc:
        assert exc.field in query
    else:
        assert params["max_results"] in {"25", "50", "100"}


def test_invitation_form() -> None:
    body = domain.invitation(
        {
            "name": "Lena",
            "email": " lena@example.com ",
            "role": "member",
            "permissions": ["orders", "messages"],
            "marketplaces": ["fr", "DE"],
        }
    )
    assert body == {
        "email": "lena@example.com",
        "role": "member",
        "permissions": ["orders", "messages"],
        "marketplaces": ["DE", "FR"],
        "name": "Lena",
    }
    everywhere = domain.grant({"permissions": "reports", "all_marketplaces": "1"})
    assert everywhere == {"permissions": ["reports"], "marketplaces": "*"}


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b.c", "role": "owner"}, "role"),
        ({"email": "a@b.c", "permissions": "billing", "marketplaces": "DE"}, "permissions"),
        ({"email": "a@b.c", "permissions": "orders"}, "marketplaces"),
        ({"email": "a@b.c", "marketplaces": "Atlantis"}, "marketplaces"),
    ],
)
def test_bad_invitations_name_their_field(form: dict[str, str], field: str) -> None:
    with pytest.raises(domain.FormError) as caught:
        domain.invitation(form)
    assert caught.value.field == field


def test_reply_body() -> None:
    assert domain.reply_body("  thanks \n") == "thanks"
    for bad in ("", "   ", "x" * 10_001):
        with pytest.raises(domain.FormError):
            domain.reply_body(bad)


def test_cap_savings_of_a_year() -> None:
    """Amazon's worked example as invoices: fees worth more than the cap, each line paying its share."""
    invoices = {
        "invoices": [
            {"period": "2026-10", "currency": "USD", "kind": "invoice", "lines": [{"fee": "39.99", "amount": "12.09"}]},
            {"period": "2026-10", "currency": "EUR", "kind": "invoice", "lines": [{"fee": "39.00", "amount": "11.79"}]},
            {
                "period": "2026-11",
                "currency": "EUR",
                "kind": "supplementary",
                "lines": [{"fee": "39.00", "amount": "0.50"}],
            },
            {"period": "2025-12", "currency": "USD", "kind": "invoice", "lines": [{"fee": "39.99", "amount": "39.99"}]},
        ],
        "credit_notes": [{"period": "2026-10", "currency": "USD", "total": "-1.00"}],
    }
    savings = domain.cap_savings(invoices, 2026)
    by = {s.currency: s for s in savings.by_currency}
    assert (by["USD"].fees, by["USD"].charged, by["USD"].credited, by["USD"].saved) == (
        Decimal("39.99"),
        Decimal("12.09"),
        Decimal("1.00"),
        Decimal("28.90"),
    )
    assert (by["EUR"].fees, by["EUR"].charged, by["EUR"].saved) == (
        Decimal("39.00"),
        Decimal("12.29"),
        Decimal("26.71"),
    )
    assert domain.cap_savings(invoices, 2024).by_currency == []


def test_chart_series_per_marketplace_and_bucket() -> None:
    """seller_view's time series shape: every bucket carries every marketplace, in the same order."""
    de = {"marketplace": "DE", "sales": "7.50", "provisional_orders": 1}
    series = {
        "marketplaces": [{"code": "US"}, {"code": "DE"}],
        "buckets": [
            {"start": "2026-09-01", "marketplaces": [{"marketplace": "US", "sales": "10.00"}, {**de, "sales": "0.00"}]},
            {"start": "2026-09-02", "marketplaces": [{"marketplace": "US", "sales": "5.00"}, de]},
        ],
    }
    assert domain.chart_series(series) == {
        "labels": ["2026-09-01", "2026-09-02"],
        "datasets": [{"label": "US", "data": ["10.00", "5.00"]}, {"label": "DE", "data": ["0.00", "7.50"]}],
        "provisional_orders": 2,
    }
    assert domain.chart_series({}) == {"labels": [], "datasets": [], "provisional_orders": 0}


def test_chart_range() -> None:
    today = date(2026, 11, 29)
    assert domain.chart_range("day", today) == (date(2026, 9, 1), today)
    assert domain.chart_range("week", today) == (date(2026, 6, 7), today)
    assert domain.chart_range("month", today) == (date(2025, 11, 1), today)


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil", "javascript:alert(1)", "", None]
)
def test_return_to_is_never_an_open_redirect(target: str | None) -> None:
    assert safe_return_to(target) == "/"


def test_return_to_keeps_a_path_of_this_site() -> None:
    assert safe_return_to("/orders?status=Shipped") == "/orders?status=Shipped"


@pytest.mark.parametrize("period", ["2026-1x", "\uff12\uff10\uff12\uff16-10", "2026/10"])
def test_billing_period_is_a_month_in_ascii_digits(period: str) -> None:
    query = urlencode({"period": period}).encode()
    with pytest.raises(domain.FormError) as caught:
        account._billing_filters(Request({"type": "http", "query_string": query}))
    assert caught.value.field == "period"
    ok = account._billing_filters(Request({"type": "http", "query_string": b"period=2026-10&currency=usd"}))
    assert ok == {"period": "2026-10", "currency": "USD"}
