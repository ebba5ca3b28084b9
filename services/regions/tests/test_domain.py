"""Unit tests of the pure rules: the participation state machine and the FX decisions."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from unified_regions import domain
from unified_regions.domain import Action, Participation, Rejected, Status

ACCOUNT = uuid.uuid4()
DE = "A1PA6795UKMFR9"
T0 = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)


def run(state: Participation, action: Action, hours: int = 0, reason: str | None = None) -> Participation:
    event = domain.decide(
        state, action, account_id=ACCOUNT, marketplace_id=DE, at=T0 + dt.timedelta(hours=hours), reason=reason
    )
    assert event.account_id == ACCOUNT and event.marketplace_id == DE
    return domain.evolve(state, event)


def build(*actions: Action) -> Participation:
    state = Participation()
    for i, action in enumerate(actions):
        state = run(state, action, i)
    return state


NEW = build()
OPEN = build(Action.OPEN)
SUBSCRIBED = build(Action.OPEN, Action.START_SUBSCRIPTION)
LISTED = build(Action.OPEN, Action.START_SUBSCRIPTION, Action.ACTIVATE_LISTINGS)
SUSPENDED = build(Action.OPEN, Action.SUSPEND)
SUSPENDED_LISTED = build(Action.OPEN, Action.START_SUBSCRIPTION, Action.ACTIVATE_LISTINGS, Action.SUSPEND)
CLOSED = build(Action.OPEN, Action.CLOSE)

STATES = {
    "new": NEW,
    "open": OPEN,
    "subscribed": SUBSCRIBED,
    "listed": LISTED,
    "suspended": SUSPENDED,
    "suspended_listed": SUSPENDED_LISTED,
    "closed": CLOSED,
}

# Which action fits which state (everything else must be rejected).
VALID: dict[str, set[Action]] = {
    "new": {Action.OPEN},
    "open": {Action.SUSPEND, Action.CLOSE, Action.START_SUBSCRIPTION},
    "subscribed": {Action.SUSPEND, Action.END_SUBSCRIPTION, Action.ACTIVATE_LISTINGS},
    "listed": {Action.SUSPEND, Action.DEACTIVATE_LISTINGS},
    "suspended": {Action.REINSTATE, Action.CLOSE},
    "suspended_listed": {Action.REINSTATE, Action.DEACTIVATE_LISTINGS},
    "closed": {Action.OPEN},
}


@pytest.mark.parametrize("name", list(STATES))
@pytest.mark.parametrize("action", list(Action))
def test_transition_table(name: str, action: Action) -> None:
    state = STATES[name]
    at = T0 + dt.timedelta(days=30)
    if action in VALID[name]:
        event = domain.decide(state, action, account_id=ACCOUNT, marketplace_id=DE, at=at)
        assert domain.evolve(state, event).last_at == at
    else:
        with pytest.raises(Rejected) as rejected:
            domain.decide(state, action, account_id=ACCOUNT, marketplace_id=DE, at=at)
        assert rejected.value.reason


def test_effects_of_each_transition() -> None:
    assert OPEN.status is Status.OPEN and not OPEN.subscribed
    assert SUBSCRIBED.subscribed and not SUBSCRIBED.listings_active
    assert LISTED.listings_active
    suspended = run(LISTED, Action.SUSPEND, 10, reason="policy")
    assert suspended.status is Status.SUSPENDED and suspended.subscribed and suspended.suspension_reason == "policy"
    reinstated = run(suspended, Action.REINSTATE, 11)
    assert reinstated.status is Status.OPEN and reinstated.suspension_reason is None and reinstated.listings_active
    ended = run(run(reinstated, Action.DEACTIVATE_LISTINGS, 12), Action.END_SUBSCRIPTION, 13)
    assert not ended.subscribed and not ended.listings_active
    closed = run(ended, Action.CLOSE, 14)
    assert closed.status is Status.CLOSED
    reopened = run(closed, Action.OPEN, 15)
    assert reopened == Participation(status=Status.OPEN, last_at=T0 + dt.timedelta(hours=15))


def test_effective_time_may_be_equal_but_never_earlier_than_the_last_change() -> None:
    state = run(OPEN, Action.START_SUBSCRIPTION, 5)
    run(state, Action.ACTIVATE_LISTINGS, 5)  # same instant is fine
    with pytest.raises(Rejected) as rejected:
        run(state, Action.ACTIVATE_LISTINGS, 4)
    assert rejected.value.code == "effective_time_before_last_change"


def test_effective_time_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        domain.decide(NEW, Action.OPEN, account_id=ACCOUNT, marketplace_id=DE, at=dt.datetime(2026, 9, 1))


def test_stream_per_account_and_marketplace() -> None:
    assert domain.stream_id(ACCOUNT, DE) == f"participation-{ACCOUNT}-{DE}"
    assert domain.stream_id(ACCOUNT, DE) != domain.stream_id(ACCOUNT, "ATVPDKIKX0DER")


def test_sp_api_participation_flags() -> None:
    assert domain.sp_api_participation(LISTED) == {"isParticipating": True, "hasSuspendedListings": False}
    assert domain.sp_api_participation(OPEN) == {"isParticipating": True, "hasSuspendedListings": True}
    assert domain.sp_api_participation(SUSPENDED_LISTED) == {"isParticipating": True, "hasSuspendedListings": True}
    assert domain.sp_api_participation(CLOSED)["isParticipating"] is False


def test_pegged_currencies_come_from_usd_and_say_so() -> None:
    rates, derived = domain.with_pegged({"USD": Decimal("1.1172"), "JPY": Decimal("175.68")})
    assert rates["AED"] == Decimal("1.1172") * Decimal("3.6725") == Decimal("4.10291700")
    assert rates["SAR"] == Decimal("4.18950")
    assert set(derived) == {"AED", "SAR"} and "3.6725" in derived["AED"] and "USD" in derived["SAR"]
    no_usd, none_derived = domain.with_pegged({"JPY": Decimal("133.73")})
    assert no_usd == {"JPY": Decimal("133.73")} and none_derived == {}


def test_fx_revision() -> None:
    rates = {"USD": Decimal("1.10")}
    assert domain.fx_revision(None, rates) == 1
    assert domain.fx_revision(domain.StoredDay({"USD": Decimal("1.1")}, 1), rates) is None
    assert domain.fx_revision(domain.StoredDay({"USD": Decimal("1.2")}, 1), rates) == 2
    assert domain.fx_revision(domain.StoredDay({"USD": Decimal("1.1"), "JPY": Decimal("1")}, 3), rates) == 4
