"""Pure rules of the regions service, no I/O.

- The participation state machine: one aggregate per (account, marketplace). ``decide`` turns a command
  into exactly one event or a ``Rejected`` reason; ``evolve`` folds events into the state.
- FX: the USD-pegged currencies ECB does not publish, and whether an imported day is new, unchanged or
  a correction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from unified_shared.contracts.regions import (
    ListingsActivated,
    ListingsDeactivated,
    ParticipationClosed,
    ParticipationOpened,
    ParticipationReinstated,
    ParticipationSuspended,
    SubscriptionEnded,
    SubscriptionStarted,
)
from unified_shared.errors import Conflict, Forbidden, Invalid
from unified_shared.events import Event

SubscriptionEvent = (
    ParticipationOpened
    | ParticipationSuspended
    | ParticipationReinstated
    | ParticipationClosed
    | SubscriptionStarted
    | SubscriptionEnded
    | ListingsActivated
    | ListingsDeactivated
)


class Status(StrEnum):
    """Where a participation stands in its life cycle."""

    NONE = "none"  # never opened
    OPEN = "open"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class Action(StrEnum):
    """The commands on a participation, by the path segment the API names them with."""

    OPEN = "open"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    CLOSE = "close"
    START_SUBSCRIPTION = "start-subscription"
    END_SUBSCRIPTION = "end-subscription"
    ACTIVATE_LISTINGS = "activate-listings"
    DEACTIVATE_LISTINGS = "deactivate-listings"


@dataclass(frozen=True, slots=True)
class Participation:
    """The account's regional seller account in one marketplace, as its events say."""

    status: Status = Status.NONE
    subscribed: bool = False
    listings_active: bool = False
    last_at: dt.datetime | None = None
    suspension_reason: str | None = None


class Rejected(Conflict):
    """The command does not fit the current state (a conflict); ``reason`` says why, ``code`` names the rule."""

    title = "Transition not allowed"

    def __init__(self, reason: str, *, code: str = "invalid_transition") -> None:
        super().__init__(None, reason, code=code)
        self.reason = reason
        self.code = code


def effective_time(
    at: dt.datetime | None, now: dt.datetime, *, future_skew_s: float, backdate_grace_s: int, operator: bool
) -> dt.datetime:
    """A change's effective time: now by default; a past time within the grace window; an older one only for
    the operator (history brought over), since billing may have invoiced that time already."""
    if at is None:
        return now
    at = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    if at > now + dt.timedelta(seconds=future_skew_s):
        raise Invalid("at", f"at {at.isoformat()} is in the future", title="Effective time in the future")
    if at < now - dt.timedelta(seconds=backdate_grace_s) and not operator:
        raise Forbidden(
            "at",
            f"an effective time more than {backdate_grace_s // 3600} h in the past needs the operator credential"
            " (X-Operator-Token)",
            title="Backdating needs the operator",
        )
    return at


def stream_id(account_id: UUID, marketplace_id: str) -> str:
    """One stream per (account, marketplace): concurrent commands on the pair conflict on its version."""
    return f"participation-{account_id}-{marketplace_id}"


def _require_aware(at: dt.datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("effective time must be timezone-aware")


def decide(
    state: Participation,
    action: Action,
    *,
    account_id: UUID,
    marketplace_id: str,
    at: dt.datetime,
    reason: str | None = None,
) -> SubscriptionEvent:
    """The one event ``action`` causes in ``state``, or ``Rejected`` with the reason it cannot."""
    _require_aware(at)
    if state.last_at is not None and at < state.last_at:
        raise Rejected(
            f"effective time {at.isoformat()} is earlier than the last change of this participation "
            f"({state.last_at.isoformat()}); changes must be recorded in time order",
            code="effective_time_before_last_change",
        )
    event_type, refusals = _TRANSITIONS[action]
    for refuses, why in refusals:
        if refuses(state):
            raise Rejected(why.format(status=state.status))
    if event_type is ParticipationSuspended:
        return ParticipationSuspended(account_id=account_id, marketplace_id=marketplace_id, at=at, reason=reason)
    return event_type(account_id=account_id, marketplace_id=marketplace_id, at=at)


def _not_open(p: Participation) -> bool:
    return p.status is not Status.OPEN


# Each action: the one event it causes, after the refusals checked in order (a test of the state and the
# reason it gives; ``{status}`` is the participation's status).
_Refusal = tuple[Callable[[Participation], bool], str]
_TRANSITIONS: dict[Action, tuple[type[SubscriptionEvent], tuple[_Refusal, ...]]] = {
    Action.OPEN: (
        ParticipationOpened,
        (
            (lambda p: p.status is Status.OPEN, "the participation is already open"),
            (
                lambda p: p.status is Status.SUSPENDED,
                "the participation is suspended: reinstate it instead of opening it",
            ),
        ),
    ),
    Action.SUSPEND: (
        ParticipationSuspended,
        ((_not_open, "only an open participation can be suspended (it is {status})"),),
    ),
    Action.REINSTATE: (
        ParticipationReinstated,
        (
            (
                lambda p: p.status is not Status.SUSPENDED,
                "only a suspended participation can be reinstated (it is {status})",
            ),
        ),
    ),
    Action.CLOSE: (
        ParticipationClosed,
        (
            (
                lambda p: p.status not in (Status.OPEN, Status.SUSPENDED),
                "only an open or suspended participation can be closed (it is {status})",
            ),
            (lambda p: p.subscribed, "the Professional subscription is still active: end it before closing"),
        ),
    ),
    Action.START_SUBSCRIPTION: (
        SubscriptionStarted,
        (
            (_not_open, "a subscription can start only while the participation is open (it is {status})"),
            (lambda p: p.subscribed, "the Professional subscription is already active"),
        ),
    ),
    Action.END_SUBSCRIPTION: (
        SubscriptionEnded,
        (
            (lambda p: not p.subscribed, "there is no active subscription to end"),
            (
                lambda p: p.listings_active,
                "listings are still active: deactivate them before ending the subscription",
            ),
        ),
    ),
    Action.ACTIVATE_LISTINGS: (
        ListingsActivated,
        (
            (_not_open, "listings can be activated only while the participation is open (it is {status})"),
            (lambda p: not p.subscribed, "listings can be activated only with an active subscription"),
            (lambda p: p.listings_active, "listings are already active"),
        ),
    ),
    Action.DEACTIVATE_LISTINGS: (
        ListingsDeactivated,
        ((lambda p: not p.listings_active, "listings are not active"),),
    ),
}


def evolve(state: Participation, event: Event) -> Participation:
    """Apply one recorded event; events are facts, so this never refuses."""
    if isinstance(event, ParticipationOpened):
        return Participation(status=Status.OPEN, last_at=event.at)
    if isinstance(event, ParticipationSuspended):
        return replace(state, status=Status.SUSPENDED, last_at=event.at, suspension_reason=event.reason)
    if isinstance(event, ParticipationReinstated):
        return replace(state, status=Status.OPEN, last_at=event.at, suspension_reason=None)
    if isinstance(event, ParticipationClosed):
        return replace(state, status=Status.CLOSED, subscribed=False, listings_active=False, last_at=event.at)
    if isinstance(event, SubscriptionStarted):
        return replace(state, subscribed=True, last_at=event.at)
    if isinstance(event, SubscriptionEnded):
        return replace(state, subscribed=False, listings_active=False, last_at=event.at)
    if isinstance(event, ListingsActivated):
        return replace(state, listings_active=True, last_at=event.at)
    if isinstance(event, ListingsDeactivated):
        return replace(state, listings_active=False, last_at=event.at)
    return state


def sp_api_participation(state: Participation) -> dict[str, bool]:
    """Amazon's ``participation`` object: ``hasSuspendedListings`` is true when the seller's listing
    status is inactive (Amazon's definition), which includes every listing of a suspended account."""
    participating = state.status in (Status.OPEN, Status.SUSPENDED)
    suspended_listings = state.status is Status.SUSPENDED or not state.listings_active
    return {"isParticipating": participating, "hasSuspendedListings": suspended_listings}


# -- FX ---------------------------------------------------------------------------------------------

# ECB publishes no AED or SAR rate; both are pegged to the US dollar (DESIGN section 7).
USD_PEGS: dict[str, Decimal] = {"AED": Decimal("3.6725"), "SAR": Decimal("3.75")}


def with_pegged(rates: dict[str, Decimal]) -> tuple[dict[str, Decimal], dict[str, str]]:
    """Add the USD-pegged currencies (units per EUR = USD per EUR x peg); returns rates and how each
    derived one was made. Without a USD rate that day they stay absent: never guessed."""
    out = dict(rates)
    derived: dict[str, str] = {}
    usd = rates.get("USD")
    if usd is None:
        return out, derived
    for currency, peg in USD_PEGS.items():
        if currency in rates:  # the file has a rate of its own: keep it
            continue
        out[currency] = usd * peg
        derived[currency] = f"USD rate x {peg} ({currency} peg: {peg} {currency} per USD)"
    return out, derived


def pegged_source_note() -> str:
    pegs = ", ".join(f"{peg} {c} per USD" for c, peg in USD_PEGS.items())
    return f"{', '.join(USD_PEGS)} derived from their USD pegs ({pegs})"


@dataclass(frozen=True, slots=True)
class StoredDay:
    rates: dict[str, Decimal]
    revision: int


def fx_revision(existing: StoredDay | None, rates: dict[str, Decimal]) -> int | None:
    """The revision to publish for a day, or None when it is already published with the same rates."""
    if existing is None:
        return 1
    if existing.rates == rates:  # Decimal equality: "1.10" and "1.1" are the same rate
        return None
    return existing.revision + 1
