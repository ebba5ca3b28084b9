"""Pure rules: validation naming the field, the status state machine, idempotent ingestion, refunds."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from unified_orders.domain import (
    STATUSES,
    TRANSITIONS,
    can_transition,
    decide,
    decide_refund,
    parse_order,
    parse_refund,
    refund_id_for,
)
from unified_shared.catalog import ApiRegion
from unified_shared.errors import DomainError
from unified_shared.problems import status_of

from .support import DE, FR, UK, US, order

EU = ApiRegion.EU


def refused(raw: Any, region: ApiRegion = EU, scope: Any = "*") -> DomainError:
    with pytest.raises(DomainError) as info:
        parse_order(raw, region, scope)
    return info.value


def test_valid_order_is_normalized() -> None:
    parsed = parse_order(order(amount="19.9", updated="2026-09-01T12:05:00+02:00"), EU, "*")
    assert parsed.amount == Decimal("19.90") and str(parsed.amount) == "19.90"
    assert parsed.last_update_date.isoformat() == "2026-09-01T10:05:00+00:00"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"AmazonOrderId": "12-1234567-1234567"}, "AmazonOrderId"),
        ({"AmazonOrderId": "123-123456-12345678"}, "AmazonOrderId"),
        ({"MarketplaceId": "NOPE"}, "MarketplaceId"),
        ({"PurchaseDate": "yesterday"}, "PurchaseDate"),
        ({"LastUpdateDate": "2026-09-01T10:05:00"}, "LastUpdateDate"),  # no offset
        ({"LastUpdateDate": "2026-08-01T10:05:00Z"}, "LastUpdateDate"),  # before PurchaseDate
        ({"OrderStatus": "Lost"}, "OrderStatus"),
        ({"FulfillmentChannel": "FBA"}, "FulfillmentChannel"),
        ({"OrderTotal": None}, "OrderTotal"),
        ({"OrderTotal": {"CurrencyCode": "USD", "Amount": "1.00"}}, "OrderTotal.CurrencyCode"),
        ({"OrderTotal": {"CurrencyCode": "EUR", "Amount": "-1.00"}}, "OrderTotal.Amount"),
        ({"OrderTotal": {"CurrencyCode": "EUR", "Amount": "1,00"}}, "OrderTotal.Amount"),
        ({"OrderTotal": {"CurrencyCode": "EUR", "Amount": 1.5}}, "OrderTotal.Amount"),
        ({"OrderTotal": {"CurrencyCode": "EUR", "Amount": "1.001"}}, "OrderTotal.Amount"),
        ({"OrderTotal": {"CurrencyCode": "EUR", "Amount": "NaN"}}, "OrderTotal.Amount"),
        ({"NumberOfItemsShipped": -1}, "NumberOfItemsShipped"),
        ({"NumberOfItemsUnshipped": True}, "NumberOfItemsUnshipped"),
    ],
)
def test_each_fault_names_its_field(changes: dict[str, Any], field: str) -> None:
    error = refused({**order(), **changes})
    assert error.field == field
    assert status_of(error) == 422


def test_minor_units_follow_the_currency() -> None:
    # JPY has no minor unit: an FE instance refuses yen with decimals and accepts whole yen.
    jp = {**order(marketplace="A1VC38T7YXB528", amount="1482")}
    assert parse_order(jp, ApiRegion.FE, "*").amount == Decimal("1482")
    assert refused({**jp, "OrderTotal": {"CurrencyCode": "JPY", "Amount": "1482.5"}}, ApiRegion.FE).field == (
        "OrderTotal.Amount"
    )


def test_another_regions_marketplace_names_the_right_region() -> None:
    error = refused(order(marketplace=US))
    assert (error.field, status_of(error), error.extra["region"]) == ("MarketplaceId", 422, "NA")
    assert "NA" in error.detail


def test_scope_is_enforced() -> None:
    assert parse_order(order(marketplace=FR), EU, frozenset({DE, FR})).marketplace_id == FR
    error = refused(order(marketplace=UK), EU, frozenset({DE, FR}))
    assert (error.field, status_of(error)) == ("MarketplaceId", 403)


def test_state_machine() -> None:
    assert can_transition("Pending", "Unshipped")
    assert can_transition("Unshipped", "Shipped")
    assert not can_transition("Shipped", "Pending")
    assert not can_transition("Shipped", "Unshipped")
    assert not can_transition("Unshipped", "Pending")
    for target in STATUSES:  # final states
        assert not can_transition("Canceled", target)
        assert not can_transition("Shipped", target)
    assert set(TRANSITIONS) == set(STATUSES)
    assert all(targets <= set(STATUSES) for targets in TRANSITIONS.values())


def test_decide_new_same_newer_older() -> None:
    raw = order(status="Pending")
    first = decide(None, parse_order(raw, EU, "*"))
    assert first.outcome == "placed"
    stored = first.state
    assert decide(stored, parse_order(raw, EU, "*")).outcome == "unchanged"
    newer = decide(
        stored, parse_order({**raw, "OrderStatus": "Unshipped", "LastUpdateDate": "2026-09-02T00:00:00Z"}, EU, "*")
    )
    assert (newer.outcome, newer.status_change) == ("updated", ("Pending", "Unshipped"))
    counts = decide(
        stored, parse_order({**raw, "LastUpdateDate": "2026-09-02T00:00:00Z", "NumberOfItemsUnshipped": 1}, EU, "*")
    )
    assert (counts.outcome, counts.status_change, counts.state.items_unshipped) == ("updated", None, 1)
    assert counts.counts_changed and not newer.counts_changed
    later = decide(
        counts.state,
        parse_order({**raw, "LastUpdateDate": "2026-09-03T00:00:00Z", "NumberOfItemsUnshipped": 1}, EU, "*"),
    )
    assert (later.outcome, later.counts_changed) == ("updated", False)  # only LastUpdateDate moved
    with pytest.raises(DomainError) as older:
        decide(newer.state, parse_order({**raw, "LastUpdateDate": "2026-09-01T12:00:00Z"}, EU, "*"))
    assert (older.value.field, status_of(older.value)) == ("LastUpdateDate", 409)
    with pytest.raises(DomainError) as same_time_other_content:
        decide(stored, parse_order({**raw, "OrderStatus": "Canceled"}, EU, "*"))
    assert same_time_other_content.value.field == "LastUpdateDate"


def test_impossible_transition_and_immutable_total_are_refused() -> None:
    shipped = decide(None, parse_order(order(status="Shipped"), EU, "*")).state
    with pytest.raises(DomainError) as back:
        decide(
            shipped,
            parse_order(order(shipped.amazon_order_id, status="Pending", updated="2026-09-05T00:00:00Z"), EU, "*"),
        )
    assert (back.value.field, status_of(back.value)) == ("OrderStatus", 409)
    with pytest.raises(DomainError) as total:
        decide(
            shipped,
            parse_order(
                order(shipped.amazon_order_id, status="Shipped", amount="25.00", updated="2026-09-05T00:00:00Z"),
                EU,
                "*",
            ),
        )
    assert total.value.field == "OrderTotal.Amount"


def test_refund_rules() -> None:
    shipped = decide(None, parse_order(order(status="Shipped", amount="20.00"), EU, "*")).state
    body = {"RefundAmount": {"CurrencyCode": "EUR", "Amount": "15.00"}, "RefundedAt": "2026-09-03T10:00:00Z"}
    refund = parse_refund(body, shipped)
    assert refund.refund_id == refund_id_for(refund.refunded_at, Decimal("15.00"))
    assert decide_refund(shipped, refund, None) is True
    assert decide_refund(shipped, refund, refund) is False  # same RefundedAt and amount: once
    after = replace(shipped, refunded_amount=Decimal("15.00"))
    second = parse_refund({**body, "RefundAmount": {"CurrencyCode": "EUR", "Amount": "5.01"}}, after)
    with pytest.raises(DomainError) as too_much:
        decide_refund(after, second, None)
    assert too_much.value.field == "RefundAmount.Amount"
    assert decide_refund(
        after, parse_refund({**body, "RefundAmount": {"CurrencyCode": "EUR", "Amount": "5.00"}}, after), None
    )
    with pytest.raises(DomainError) as currency:
        parse_refund({**body, "RefundAmount": {"CurrencyCode": "GBP", "Amount": "1.00"}}, shipped)
    assert currency.value.field == "RefundAmount.CurrencyCode"
    with pytest.raises(DomainError) as zero:
        parse_refund({**body, "RefundAmount": {"CurrencyCode": "EUR", "Amount": "0.00"}}, shipped)
    assert zero.value.field == "RefundAmount.Amount"
    pending = decide(None, parse_order(order(status="Pending"), EU, "*")).state
    with pytest.raises(DomainError) as nothing_charged:
        decide_refund(pending, parse_refund(body, pending), None)
    assert nothing_charged.value.field == "OrderStatus"
