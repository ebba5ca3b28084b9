"""Pure order rules: input validation, the status state machine, idempotent ingestion and refunds.

No I/O here: the handlers load the stored order, ask these functions what to do, then write and append.
Every refusal is a shared domain error (``Invalid``, ``Conflict``...) naming the SP-API field at fault,
so a batch can report it per order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from unified_shared.auth import Scope
from unified_shared.catalog import ApiRegion
from unified_shared.errors import Conflict, Invalid
from unified_shared.money import minor_units, quantum
from unified_shared.scope import check_marketplace

ORDER_ID_RE = re.compile(r"^\d{3}-\d{7}-\d{7}$")
AMOUNT_RE = re.compile(r"^[+-]?\d+(\.\d+)?$")
MAX_BATCH = 100

STATUSES: tuple[str, ...] = (
    "PendingAvailability",
    "Pending",
    "Unshipped",
    "PartiallyShipped",
    "Shipped",
    "InvoiceUnconfirmed",
    "Canceled",
    "Unfulfillable",
)

# Allowed status changes (ours, after SP-API's order life cycle). Shipped and Canceled are final: nothing
# ships back to Pending, and a canceled order never revives. Same status -> no transition at all.
TRANSITIONS: dict[str, frozenset[str]] = {
    "PendingAvailability": frozenset({"Pending", "Unshipped", "Canceled"}),
    "Pending": frozenset(
        {"Unshipped", "PartiallyShipped", "Shipped", "InvoiceUnconfirmed", "Canceled", "Unfulfillable"}
    ),
    "Unshipped": frozenset({"PartiallyShipped", "Shipped", "InvoiceUnconfirmed", "Canceled", "Unfulfillable"}),
    "PartiallyShipped": frozenset({"Shipped", "InvoiceUnconfirmed"}),
    "InvoiceUnconfirmed": frozenset({"Shipped"}),
    "Unfulfillable": frozenset({"Canceled"}),
    "Shipped": frozenset(),
    "Canceled": frozenset(),
}

# Nothing was charged yet in these states, so there is nothing to refund.
NOT_REFUNDABLE = frozenset({"PendingAvailability", "Pending", "Canceled"})

Outcome = Literal["placed", "updated", "unchanged"]


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


@dataclass(frozen=True, slots=True)
class OrderInput:
    """One SP-API Orders v0 order as received, validated and normalized (UTC times, quantized amount)."""

    amazon_order_id: str
    marketplace_id: str
    purchase_date: datetime
    last_update_date: datetime
    order_status: str
    fulfillment_channel: str
    currency_code: str
    amount: Decimal
    items_shipped: int
    items_unshipped: int


@dataclass(frozen=True, slots=True)
class OrderState(OrderInput):
    """The stored order: its last accepted input plus what refunds took, and its stream version."""

    refunded_amount: Decimal
    version: int

    @property
    def refundable(self) -> Decimal:
        return self.amount - self.refunded_amount


def parse_time(value: Any, field: str) -> datetime:
    """An ISO 8601 timestamp with a UTC offset (SP-API sends ``2026-09-01T10:00:00Z``), as UTC."""
    if not isinstance(value, str):
        raise Invalid(field, f"{field} must be an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise Invalid(field, f"{field} {value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise Invalid(field, f"{field} {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def parse_amount(value: Any, currency: str, field: str, *, allow_zero: bool = True) -> Decimal:
    """A decimal string, not negative, with at most the currency's minor units; quantized to them."""
    if not isinstance(value, str) or not AMOUNT_RE.match(value.strip()):
        raise Invalid(field, f'{field} must be a decimal string such as "12.09", got {value!r}')
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:  # pragma: no cover - the regex already refused it
        raise Invalid(field, f"{field} {value!r} is not a decimal") from None
    if amount < 0:
        raise Invalid(field, f"{field} must not be negative, got {value}")
    if not allow_zero and amount == 0:
        raise Invalid(field, f"{field} must be greater than zero")
    digits = minor_units(currency)
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > digits:
        raise Invalid(field, f"{field} {value} has more decimals than {currency} allows ({digits})")
    return amount.quantize(quantum(currency))


def _count(raw: Mapping[str, Any], field: str) -> int:
    value = raw.get(field, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(field, f"{field} must be a non-negative integer, got {value!r}")
    return value


def parse_order(raw: Any, region: ApiRegion, scope: Scope) -> OrderInput:
    """Validate one SP-API order object; the first fault found is raised, naming its field."""
    if not isinstance(raw, Mapping):
        raise Invalid("Order", "each order must be a JSON object")
    order_id = raw.get("AmazonOrderId")
    if not isinstance(order_id, str) or not ORDER_ID_RE.match(order_id):
        raise Invalid("AmazonOrderId", f"AmazonOrderId must look like 111-1234567-1234567, got {order_id!r}")
    marketplace = check_marketplace(raw.get("MarketplaceId"), region, scope, "MarketplaceId")
    purchase_date = parse_time(raw.get("PurchaseDate"), "PurchaseDate")
    last_update = parse_time(raw.get("LastUpdateDate"), "LastUpdateDate")
    if last_update < purchase_date:
        raise Invalid("LastUpdateDate", "LastUpdateDate is earlier than PurchaseDate")
    status = raw.get("OrderStatus")
    if status not in STATUSES:
        raise Invalid("OrderStatus", f"OrderStatus must be one of {', '.join(STATUSES)}, got {status!r}")
    channel = raw.get("FulfillmentChannel")
    if channel not in ("MFN", "AFN"):
        raise Invalid("FulfillmentChannel", f"FulfillmentChannel must be MFN or AFN, got {channel!r}")
    total = raw.get("OrderTotal")
    if not isinstance(total, Mapping):
        raise Invalid("OrderTotal", "OrderTotal {CurrencyCode, Amount} is required")
    currency = total.get("CurrencyCode")
    if currency != marketplace.currency:
        raise Invalid(
            "OrderTotal.CurrencyCode",
            f"OrderTotal.CurrencyCode must be {marketplace.currency}, the currency of marketplace "
            f"{marketplace.code}, got {currency!r}",
        )
    amount = parse_amount(total.get("Amount"), marketplace.currency, "OrderTotal.Amount")
    return OrderInput(
        amazon_order_id=order_id,
        marketplace_id=marketplace.marketplace_id,
        purchase_date=purchase_date,
        last_update_date=last_update,
        order_status=str(status),
        fulfillment_channel=str(channel),
        currency_code=marketplace.currency,
        amount=amount,
        items_shipped=_count(raw, "NumberOfItemsShipped"),
        items_unshipped=_count(raw, "NumberOfItemsUnshipped"),
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """What ingesting an order does: the outcome, the new state, the status change if any, and whether the
    item counts moved."""

    outcome: Outcome
    state: OrderState
    status_change: tuple[str, str] | None = None
    counts_changed: bool = False


# Facts fixed when the order is placed; only status, item counts and LastUpdateDate move afterwards.
_IMMUTABLE = (
    ("marketplace_id", "MarketplaceId"),
    ("purchase_date", "PurchaseDate"),
    ("fulfillment_channel", "FulfillmentChannel"),
    ("currency_code", "OrderTotal.CurrencyCode"),
    ("amount", "OrderTotal.Amount"),
)
# What a newer update of a placed order may change (everything else is immutable or the same).
_UPDATABLE = ("last_update_date", "order_status", "items_shipped", "items_unshipped")


def _same_content(current: OrderState, new: OrderInput) -> bool:
    return all(getattr(current, f) == getattr(new, f) for f in OrderInput.__dataclass_fields__)


def decide(current: OrderState | None, new: OrderInput) -> Decision:
    """Idempotent ingestion: same order at the same LastUpdateDate does nothing, older ones are refused."""
    if current is None:
        state = OrderState(
            **{f: getattr(new, f) for f in OrderInput.__dataclass_fields__}, refunded_amount=Decimal(0), version=0
        )
        return Decision("placed", state)
    if new.last_update_date < current.last_update_date:
        raise Conflict(
            "LastUpdateDate",
            f"LastUpdateDate {new.last_update_date.isoformat()} is older than the stored "
            f"{current.last_update_date.isoformat()}",
        )
    if new.last_update_date == current.last_update_date:
        if _same_content(current, new):
            return Decision("unchanged", current)
        raise Conflict(
            "LastUpdateDate",
            "the order differs from the stored one at the same LastUpdateDate: a change needs a newer LastUpdateDate",
        )
    for attr, field in _IMMUTABLE:
        if getattr(current, attr) != getattr(new, attr):
            raise Conflict(field, f"{field} cannot change once the order is placed")
    change: tuple[str, str] | None = None
    if new.order_status != current.order_status:
        if not can_transition(current.order_status, new.order_status):
            raise Conflict(
                "OrderStatus",
                f"an order cannot go from {current.order_status} to {new.order_status}",
                from_status=current.order_status,
            )
        change = (current.order_status, new.order_status)
    state = replace(current, **{f: getattr(new, f) for f in _UPDATABLE})
    counts = (state.items_shipped, state.items_unshipped) != (current.items_shipped, current.items_unshipped)
    return Decision("updated", state, change, counts)


@dataclass(frozen=True, slots=True)
class RefundInput:
    """A refund as received (and stored in ``order_refunds``); its ID makes a repeated refund a no-op."""

    refund_id: str
    currency_code: str
    amount: Decimal
    refunded_at: datetime


def refund_id_for(refunded_at: datetime, amount: Decimal) -> str:
    """Deterministic refund ID when the caller gives none: the same RefundedAt and amount is the same refund."""
    key = f"{refunded_at.astimezone(UTC).isoformat()}|{amount}"
    return "r-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def parse_refund(raw: Any, order: OrderState) -> RefundInput:
    if not isinstance(raw, Mapping):
        raise Invalid("RefundAmount", "the body must be {RefundAmount: {CurrencyCode, Amount}, RefundedAt}")
    money = raw.get("RefundAmount")
    if not isinstance(money, Mapping):
        raise Invalid("RefundAmount", "RefundAmount {CurrencyCode, Amount} is required")
    if money.get("CurrencyCode") != order.currency_code:
        raise Invalid(
            "RefundAmount.CurrencyCode",
            f"RefundAmount.CurrencyCode must be the order's currency {order.currency_code}, "
            f"got {money.get('CurrencyCode')!r}",
        )
    amount = parse_amount(money.get("Amount"), order.currency_code, "RefundAmount.Amount", allow_zero=False)
    refunded_at = parse_time(raw.get("RefundedAt"), "RefundedAt")
    if refunded_at < order.purchase_date:
        raise Invalid("RefundedAt", "RefundedAt is earlier than the order's PurchaseDate")
    given = raw.get("RefundId")
    if given is not None and (not isinstance(given, str) or not 1 <= len(given) <= 64):
        raise Invalid("RefundId", "RefundId must be a string of 1 to 64 characters")
    refund_id = given or refund_id_for(refunded_at, amount)
    return RefundInput(refund_id, order.currency_code, amount, refunded_at)


def decide_refund(order: OrderState, refund: RefundInput, earlier: RefundInput | None) -> bool:
    """True if the refund is new and must be recorded; False for an exact repeat; raises if it cannot apply."""
    if earlier is not None:
        if (earlier.amount, earlier.refunded_at) == (refund.amount, refund.refunded_at):
            return False
        raise Conflict("RefundId", f"refund {refund.refund_id} was recorded with another amount or time")
    if order.order_status in NOT_REFUNDABLE:
        raise Conflict("OrderStatus", f"a {order.order_status} order has nothing to refund")
    if refund.amount > order.refundable:
        raise Invalid(
            "RefundAmount.Amount",
            f"RefundAmount.Amount {refund.amount} exceeds what is left to refund: {order.refundable} "
            f"{order.currency_code} (order total {order.amount} minus earlier refunds {order.refunded_amount})",
        )
    return True
