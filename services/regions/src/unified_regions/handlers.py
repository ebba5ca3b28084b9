"""Participation commands and reads, and the consumer of identity.accounts.v1.

A command is one unit of work (``unified_shared.uow``): load the participation's stream, let the domain
decide, append at the expected version and save the read row; the relay is woken after the commit. The
consumer's handlers run inside the consumer's transaction, as a unit of work over its connection.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from unified_regions import domain
from unified_regions.domain import Action
from unified_regions.store import Account, ParticipationRow, PgRegionsStore
from unified_shared import catalog
from unified_shared.auth import Principal
from unified_shared.clock import Clock, system_clock
from unified_shared.consumer import HandlerTable, PoisonEvent, ReceivedEvent
from unified_shared.contracts.identity import AccountRegistered
from unified_shared.contracts.regions import ParticipationOpened
from unified_shared.errors import Conflict, NotFound, adding
from unified_shared.eventstore import ConcurrencyError
from unified_shared.uow import PgUnitOfWork, UnitOfWork, Units

log = logging.getLogger(__name__)

CHANGE_ROLES = ("owner", "admin")
NO_ACCOUNT = "no such account (not registered, or not known to regions yet)"


@dataclass(frozen=True, slots=True)
class CommandResult(ParticipationRow):
    """What a participation command did: the participation after it, and the type of the event it recorded."""

    event_type: str


@dataclass(frozen=True, slots=True)
class TimeRules:
    """How far an effective time may lie in the future (clock skew) or the past (without the operator)."""

    future_skew_s: float
    backdate_grace_s: int


class RegionsHandlers:
    def __init__(self, units: Units[PgRegionsStore], rules: TimeRules, clock: Clock = system_clock) -> None:
        self.units = units
        self.rules = rules
        self.clock = clock

    async def change(
        self,
        principal: Principal,
        account_id: UUID,
        marketplace_id: str,
        action: Action,
        *,
        at: dt.datetime | None,
        reason: str | None,
        operator: bool,
    ) -> CommandResult:
        """Run one participation command: load the stream, decide, append with the expected version.

        A concurrent command on the same (account, marketplace) makes the append fail: we reload and decide
        once more (the other command may have made ours invalid), and answer 409 if it conflicts again.
        """
        principal.require_account(account_id)
        principal.require_role(*CHANGE_ROLES)
        principal.require_marketplace(marketplace_id)
        r = self.rules
        when = domain.effective_time(
            at, self.clock(), future_skew_s=r.future_skew_s, backdate_grace_s=r.backdate_grace_s, operator=operator
        )
        for attempt in (1, 2):
            try:
                async with self.units.command() as uow:
                    return await self._decide(uow, account_id, marketplace_id, action, at=when, reason=reason)
            except ConcurrencyError:
                if attempt == 1:
                    log.info("concurrent command; retrying", extra={"account": str(account_id), "action": str(action)})
                    continue
                raise Conflict(
                    None,
                    "another change to this participation happened at the same time; retry",
                    title="Concurrent change",
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _decide(
        self,
        uow: UnitOfWork[PgRegionsStore],
        account_id: UUID,
        marketplace_id: str,
        action: Action,
        *,
        at: dt.datetime,
        reason: str | None,
    ) -> CommandResult:
        if await uow.store.get_account(account_id) is None:
            raise NotFound(None, NO_ACCOUNT)
        state, version = await uow.store.load_participation(account_id, marketplace_id)
        with adding(action=str(action), marketplace_id=marketplace_id, state=str(state.status)):
            event = domain.decide(
                state, action, account_id=account_id, marketplace_id=marketplace_id, at=at, reason=reason
            )
        await uow.append(domain.stream_id(account_id, marketplace_id), version, [event])
        new_state = domain.evolve(state, event)
        await uow.store.save_participation(account_id, marketplace_id, new_state, version + 1)
        return CommandResult(marketplace_id, new_state, version + 1, event.NAME)

    async def participations(self, principal: Principal, account_id: UUID) -> list[ParticipationRow]:
        """The account's participations in the caller's scope (every member may read)."""
        principal.require_account(account_id)
        async with self.units.query() as store:
            if await store.get_account(account_id) is None:
                raise NotFound(None, NO_ACCOUNT)
            rows = await store.list_participations(account_id)
        return [r for r in rows if principal.covers(r.marketplace_id)]

    async def own_participations(self, principal: Principal) -> tuple[Account | None, list[ParticipationRow]]:
        """The signed-in account and its participations in the caller's scope (SP-API Sellers)."""
        async with self.units.query() as store:
            account = await store.get_account(principal.account_id)
            rows = await store.list_participations(principal.account_id) if account else []
        return account, [r for r in rows if principal.covers(r.marketplace_id)]


# -- identity.accounts.v1 ---------------------------------------------------------------------------
async def on_registrations(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
    """A batch's registrations, in log order (each opens its home marketplace through the event store)."""
    for received in events:
        assert isinstance(received.event, AccountRegistered)
        await register_account(conn, received.event)


# The consumer of identity.accounts.v1: only registrations concern regions (other types are no-ops).
HANDLERS = HandlerTable(by_type={AccountRegistered: on_registrations})


async def register_account(conn: asyncpg.Connection, event: AccountRegistered) -> None:
    """The account becomes known and its home marketplace participation opens at ``registered_at``
    (inside the caller's transaction: the consumer's batch)."""
    uow = PgUnitOfWork(conn, PgRegionsStore(conn))
    try:
        home = catalog.resolve(event.home_marketplace_id)
    except catalog.UnknownMarketplace as exc:
        raise PoisonEvent(str(exc)) from None
    registered_at = event.registered_at
    if registered_at.tzinfo is None:
        registered_at = registered_at.replace(tzinfo=dt.UTC)
    await uow.store.insert_account(
        Account(
            account_id=event.account_id,
            legal_name=event.legal_name,
            home_marketplace_id=home.marketplace_id,
            owner_user_id=event.owner_user_id,
            registered_at=registered_at,
        ),
    )
    state, version = await uow.store.load_participation(event.account_id, home.marketplace_id)
    if version > 0:  # already opened (the same registration published twice under another id)
        return
    opened = ParticipationOpened(account_id=event.account_id, marketplace_id=home.marketplace_id, at=registered_at)
    await uow.append(domain.stream_id(event.account_id, home.marketplace_id), 0, [opened])
    await uow.store.save_participation(event.account_id, home.marketplace_id, domain.evolve(state, opened), 1)
