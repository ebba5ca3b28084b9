"""Events on ``orders.orders.v1`` (SP-API Orders v0 vocabulary)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from unified_shared.events import AccountEvent, DecimalString, event_type
from unified_shared.topics import ORDERS

OrderStatus = Literal[
    "Pending",
    "Unshipped",
    "PartiallyShipped",
    "Shipped",
    "Canceled",
    "Unfulfillable",
    "InvoiceUnconfirmed",
    "PendingAvailability",
]
FulfillmentChannel = Literal["MFN", "AFN"]


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)
    currency_code: str
    amount: DecimalString


class _OrderEvent(AccountEvent):
    """A change of one order as SP-API reported it to the regional orders service of ``region``: the order's
    events keep their order because the account is the key."""

    DOMAIN: ClassVar[str] = "orders"
    TOPIC: ClassVar[str] = ORDERS
    marketplace_id: str
    amazon_order_id: str
    region: Literal["NA", "EU", "FE"]


@event_type
class OrderPlaced(_OrderEvent):
    purchase_date: datetime
    last_update_date: datetime
    order_status: OrderStatus
    fulfillment_channel: FulfillmentChannel
    order_total: Money
    number_of_items: int
    number_of_items_shipped: int = 0
    number_of_items_unshipped: int = 0


@event_type
class OrderStatusChanged(_OrderEvent):
    from_status: OrderStatus
    to_status: OrderStatus
    last_update_date: datetime
    number_of_items_shipped: int | None = None
    number_of_items_unshipped: int | None = None


@event_type
class OrderItemCountsChanged(_OrderEvent):
    """An order's item counts moved without a status change (one more item of a PartiallyShipped order
    shipped): the order's status stays what it was."""

    last_update_date: datetime
    number_of_items_shipped: int
    number_of_items_unshipped: int


@event_type
class OrderRefunded(_OrderEvent):
    amount: Money
    refunded_at: datetime
    last_update_date: datetime
    # Added (optional): the refund's idempotency ID and the order's refunds so far, this one included.
    refund_id: str | None = None
    total_refunded: Money | None = None
