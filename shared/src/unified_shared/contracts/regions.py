"""Events on ``regions.subscriptions.v1`` and ``regions.fx-rates.v1``."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from unified_shared.events import AccountEvent, DecimalString, Event, event_type
from unified_shared.topics import REGIONS_FX_RATES, REGIONS_SUBSCRIPTIONS

Plan = Literal["Professional"]


class _SubscriptionEvent(AccountEvent):
    DOMAIN: ClassVar[str] = "regions"
    TOPIC: ClassVar[str] = REGIONS_SUBSCRIPTIONS
    marketplace_id: str
    at: dt.datetime  # when it takes effect (may be earlier than when it was recorded)


@event_type
class ParticipationOpened(_SubscriptionEvent):
    NAME: ClassVar[str] = "ParticipationOpened"


@event_type
class ParticipationSuspended(_SubscriptionEvent):
    NAME: ClassVar[str] = "ParticipationSuspended"
    reason: str | None = None


@event_type
class ParticipationReinstated(_SubscriptionEvent):
    NAME: ClassVar[str] = "ParticipationReinstated"


@event_type
class ParticipationClosed(_SubscriptionEvent):
    NAME: ClassVar[str] = "ParticipationClosed"


@event_type
class SubscriptionStarted(_SubscriptionEvent):
    NAME: ClassVar[str] = "SubscriptionStarted"
    plan: Plan = "Professional"


@event_type
class SubscriptionEnded(_SubscriptionEvent):
    NAME: ClassVar[str] = "SubscriptionEnded"
    plan: Plan = "Professional"


@event_type
class ListingsActivated(_SubscriptionEvent):
    NAME: ClassVar[str] = "ListingsActivated"


@event_type
class ListingsDeactivated(_SubscriptionEvent):
    NAME: ClassVar[str] = "ListingsDeactivated"


@event_type
class FxRatesPublished(Event):
    """One day of euro reference rates: units of each currency per 1 EUR. Keyed by the date."""

    DOMAIN: ClassVar[str] = "regions"
    TOPIC: ClassVar[str] = REGIONS_FX_RATES
    NAME: ClassVar[str] = "FxRatesPublished"
    date: dt.date
    base: Literal["EUR"] = "EUR"
    rates: dict[str, DecimalString]
    source: str
    derived: dict[str, str] = {}  # currency -> how it was derived (e.g. AED from its USD peg)
    revision: int = 1  # 2, 3, ... when a corrected file changes a day already published

    def partition_key(self) -> str:
        return self.date.isoformat()
