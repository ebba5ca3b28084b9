"""Events on ``listings.offers.v1`` (DESIGN sections 4 and 10): offers, international links, target prices.

An offer is (account, SKU, marketplace); its price history is its event stream. Amounts are decimal strings
with an ISO currency code beside them.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from unified_shared.events import AccountEvent, DecimalString, event_type
from unified_shared.topics import LISTINGS_OFFERS

OfferStatus = Literal["Active", "Inactive"]
# none: the currency's minor unit, half-up; .99 / .95: the nearest price with that ending (ties up);
# whole: whole units (e.g. whole yen); tens: a multiple of 10 units.
Ending = Literal["none", ".99", ".95", "whole", "tens"]
Clamp = Literal["floor", "ceiling"]
RepriceCause = Literal["source_price", "rule", "fx", "opened"]


class TargetRule(BaseModel):
    """How one target marketplace's price follows the source: converted x (1 + percent/100) + fixed, rounded
    to ``ending``, clamped to [floor, ceiling] (in the target's currency)."""

    model_config = ConfigDict(frozen=True)
    marketplace_id: str
    currency: str
    percent: DecimalString
    fixed: DecimalString
    ending: Ending
    floor: DecimalString
    ceiling: DecimalString | None = None
    excluded_skus: list[str] = []
    manual_prices: dict[str, DecimalString] = {}  # SKU -> price the link leaves alone


class _OfferEvent(AccountEvent):
    """What the listings service tells about one account's offers, their international links and the target
    prices it sets; keyed by the account, so one account's changes arrive in the order made."""

    DOMAIN: ClassVar[str] = "listings"
    TOPIC: ClassVar[str] = LISTINGS_OFFERS


@event_type
class OfferUpserted(_OfferEvent):
    """The seller's own offer in one marketplace (a source, or a marketplace it prices by hand)."""

    sku: str
    marketplace_id: str
    currency: str
    price: DecimalString
    quantity: int
    status: OfferStatus
    at: dt.datetime


@event_type
class InternationalLinkSet(_OfferEvent):
    """A link from a source marketplace to targets, for one SKU or all (``sku`` = "*"); replaces the last one."""

    sku: str
    source_marketplace_id: str
    targets: list[TargetRule]
    at: dt.datetime


@event_type
class OfferPriceChanged(_OfferEvent):
    """A target price (re)computed: the rate, its date and the rule that made it. ``previous`` is None for the
    first price; a re-pricing on a new FX day is published even where the rounded price stayed the same."""

    sku: str
    marketplace_id: str
    currency: str
    price: DecimalString
    previous: DecimalString | None = None
    quantity: int
    source_marketplace_id: str
    source_currency: str
    source_price: DecimalString
    fx_rate: DecimalString  # units of the target currency per unit of the source currency
    fx_rate_date: dt.date | None = None  # None when both currencies are the same
    fx_source: str | None = None
    rule: TargetRule
    manual: bool = False
    clamped: Clamp | None = None
    cause: RepriceCause
    at: dt.datetime


@event_type
class OfferStopped(_OfferEvent):
    """A target offer no longer offered: its marketplace closed or lost active listings, the link dropped
    it, the SKU was excluded, or no rate converts its price (never guessed)."""

    sku: str
    marketplace_id: str
    reason: str
    at: dt.datetime
