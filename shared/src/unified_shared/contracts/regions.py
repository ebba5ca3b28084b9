"""Events on ``regions.subscriptions.v1`` and ``regions.fx-rates.v1``."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from unified_shared.events import AccountEvent, DecimalString, Event, event_type
from unified_shared.topics import REGIONS_FX_RATES, REGIONS_SUBSCRIPTIONS

Plan = Literal["Professional"]


class _SubscriptionEvent(AccountEvent):
    """A change of one account's standing in one marketplace (participation, subscription, listings) as the
    regions service decided it; consumers fold them per (account, marketplace) in the order of the stream."""

    DOMAIN: ClassVar[str] = "regions"
    TOPIC: ClassVar[str] = REGIONS_SUBSCRIPTIONS
    marketplace_id: str
    at: dt.datetime  # when it takes effect (may be earlier than when it was recorded)


@event_type
class ParticipationOpened(_SubscriptionEvent):
    pass


@event_type
class ParticipationSuspended(_SubscriptionEvent):
    reason: str | None = None


@event_type
class ParticipationReinstated(_SubscriptionEvent):
    pass


@event_type
class ParticipationClosed(_SubscriptionEvent):
    pass


@event_type
class SubscriptionStarted(_SubscriptionEvent):
    plan: Plan = "Professional"


@event_type
class SubscriptionEnded(_SubscriptionEvent):
    plan: Plan = "Professional"


@event_type
class ListingsActivated(_SubscriptionEvent):
    pass


@event_type
class ListingsDeactivated(_SubscriptionEvent):
    pass


@event_type
class FxRatesPublished(Event):
    """One day of euro reference rates: units of each currency per 1 EUR. Keyed by the date."""

    DOMAIN: ClassVar[str] = "regions"
    TOPIC: ClassVar[str] = REGIONS_FX_RATES
    date: dt.date
    base: Literal["EUR"] = "EUR"
    rates: dict[str, DecimalString]
    source: str
    derived: dict[str, str] = {}  # currency -> how it was derived (e.g. AED from its USD peg)
    revision: int = 1  # 2, 3, ... when a corrected file changes a day already published

    def partition_key(self) -> str:
        return self.date.isoformat()
