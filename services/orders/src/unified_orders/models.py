"""Request and response bodies of the orders API: SP-API Orders v0 shapes with the bounds of ``unified_shared.bounds``.

The models check form and range (so the OpenAPI document says exactly what is accepted); the domain checks
meaning (region, scope, currency of the marketplace, the status machine). In a batch each order is
validated on its own: a malformed order becomes a ``RejectedOrder`` reported in its result, the others go on.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from unified_orders.domain import MAX_BATCH, STATUSES
from unified_shared.bounds import AmountStr, Count, Instant, LineStr, MarketplaceId
from unified_shared.bounds import MarketplaceCurrency as CurrencyCode

ORDER_ID_PATTERN = r"^\d{3}-\d{7}-\d{7}$"

AmazonOrderId = Annotated[str, Field(pattern=ORDER_ID_PATTERN, examples=["302-1234567-1234567"])]
OrderStatus = Literal[STATUSES]  # type: ignore[valid-type]
# Items of one order: within INT, and small enough that shipped + unshipped stays within INT too.
ItemCount = Annotated[Count, Field(le=1_000_000)]


class MoneyIn(BaseModel):
    CurrencyCode: CurrencyCode
    Amount: AmountStr


class OrderIn(BaseModel):
    """One SP-API order; unknown SP-API fields are accepted and ignored."""

    AmazonOrderId: AmazonOrderId
    MarketplaceId: MarketplaceId
    PurchaseDate: Instant
    LastUpdateDate: Instant
    OrderStatus: OrderStatus
    FulfillmentChannel: Literal["MFN", "AFN"]
    OrderTotal: MoneyIn
    NumberOfItemsShipped: ItemCount = 0
    NumberOfItemsUnshipped: ItemCount = 0

    def raw(self) -> dict[str, Any]:
        """The JSON form the domain parses (times in UTC, the amount as received)."""
        return self.model_dump(mode="json")


class RejectedOrder:
    """An order of a batch that failed the model: its ID (if readable) and the validation errors."""

    def __init__(self, raw: Any, errors: list[Any]) -> None:
        order_id = raw.get("AmazonOrderId") if isinstance(raw, dict) else None
        self.amazon_order_id = order_id if isinstance(order_id, str) and len(order_id) <= 64 else None
        self.errors = errors


def _keep_rejected(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError as exc:
        return RejectedOrder(value, exc.errors(include_input=False, include_url=False))


# Typed (and documented) as OrderIn; at run time a malformed order is a RejectedOrder instead.
BatchOrder = Annotated[OrderIn, WrapValidator(_keep_rejected)]


class OrdersIn(BaseModel):
    """``{"Orders": [order, ...]}`` of 1 to 100 orders; one order alone is accepted as a batch of one."""

    Orders: list[BatchOrder] = Field(min_length=1, max_length=MAX_BATCH)
    _single: bool = PrivateAttr(False)

    @model_validator(mode="wrap")
    @classmethod
    def _one_or_many(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> OrdersIn:
        single = isinstance(value, dict) and "Orders" not in value
        model: OrdersIn = handler({"Orders": [value]} if single else value)
        model._single = single
        return model

    @property
    def single(self) -> bool:
        """The body was one order alone: its refusal is then the response itself."""
        return self._single

    def orders(self) -> list[OrderIn | RejectedOrder]:
        return list(self.Orders)


class RefundIn(BaseModel):
    RefundAmount: MoneyIn
    RefundedAt: Instant
    RefundId: LineStr | None = Field(None, min_length=1, max_length=64, description="idempotency key")

    def raw(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# -- answers ------------------------------------------------------------------------------------------


class MoneyOut(BaseModel):
    CurrencyCode: str
    Amount: str


class OrderOut(BaseModel):
    AmazonOrderId: str
    PurchaseDate: str
    LastUpdateDate: str
    OrderStatus: str
    FulfillmentChannel: str
    NumberOfItemsShipped: int
    NumberOfItemsUnshipped: int
    OrderTotal: MoneyOut
    RefundedTotal: MoneyOut
    MarketplaceId: str


class OrderPayload(BaseModel):
    payload: OrderOut


class OrdersPage(BaseModel):
    Orders: list[OrderOut]
    NextToken: str | None = None


class OrdersPayload(BaseModel):
    payload: OrdersPage


class IngestResultOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    AmazonOrderId: str | None
    outcome: Literal["placed", "updated", "unchanged", "rejected"]
    events: list[str] | None = None
    problem: dict[str, Any] | None = None


class IngestOut(BaseModel):
    results: list[IngestResultOut]


class RefundOut(BaseModel):
    AmazonOrderId: str
    RefundId: str
    outcome: Literal["refunded", "unchanged"]
    RefundAmount: MoneyOut
    RefundedAt: str
    RefundedTotal: MoneyOut
