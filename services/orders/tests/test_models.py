"""The ingest body: SP-API orders under the shared bounds, each order of a batch judged on its own."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from unified_orders.models import OrderIn, OrdersIn, RefundIn, RejectedOrder
from unified_shared.problems import validation_problem

from .support import order


def _field(rejected: Any) -> str:
    assert isinstance(rejected, RejectedOrder)
    return str(validation_problem(rejected.errors).extra["field"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"PurchaseDate": "0001-01-01T00:00:00+00:00"}, "PurchaseDate"),
        ({"LastUpdateDate": "9999-12-31T23:59:59Z"}, "LastUpdateDate"),
        ({"NumberOfItemsShipped": 2**31}, "NumberOfItemsShipped"),
        ({"OrderTotal": {"CurrencyCode": "EUR", "Amount": "1" * 40}}, "OrderTotal.Amount"),
        ({"AmazonOrderId": "302-1234567-123456\x00"}, "AmazonOrderId"),
        ({"MarketplaceId": "NOPE"}, "MarketplaceId"),
    ],
)
def test_an_order_out_of_bounds_is_rejected_alone(changes: dict[str, Any], field: str) -> None:
    batch = OrdersIn.model_validate({"Orders": [order(), {**order(), **changes}]})
    good, bad = batch.orders()
    assert isinstance(good, OrderIn)
    assert _field(bad) == field
    assert not batch.single


def test_one_order_alone_is_a_batch_of_one() -> None:
    batch = OrdersIn.model_validate(order())
    assert batch.single and isinstance(batch.orders()[0], OrderIn)
    assert batch.orders()[0].raw()["PurchaseDate"] == "2026-09-01T10:00:00Z"  # type: ignore[union-attr]


def test_batch_size_and_refund_bounds() -> None:
    with pytest.raises(ValidationError):
        OrdersIn.model_validate({"Orders": []})
    with pytest.raises(ValidationError):
        OrdersIn.model_validate({"Orders": [order() for _ in range(101)]})
    with pytest.raises(ValidationError) as info:
        RefundIn.model_validate(
            {
                "RefundAmount": {"CurrencyCode": "EUR", "Amount": "1.00"},
                "RefundedAt": "2026-09-02T10:00:00Z",
                "RefundId": "r\x00",
            }
        )
    assert info.value.errors()[0]["loc"] == ("RefundId",)
