"""Commands and event handlers: each one transaction over the service's tables and the event store."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from unified_regions import domain, ecb, store
from unified_regions.domain import Action, Participation
from unified_shared import catalog, eventstore
from unified_shared.consumer import HandlerTable, PoisonEvent, ReceivedEvent
from unified_shared.contracts.identity import AccountRegistered
from unified_shared.contracts.regions import FxRatesPublished, ParticipationOpened
from unified_shared.eventstore import ConcurrencyError
from unified_shared.problems import Problem
from unified_shared.progress import ProgressReport

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommandResult:
    marketplace_id: str
    state: Participation
    version: int
    event_type: str


async def _load(conn: asyncpg.Connection, account_id: UUID, marketplace_id: str) -> tuple[Participation, int]:
    return await eventstore.load(conn, domain.stream_id(account_id, marketplace_id), domain.evolve, Participation())


async def execute(
    pool: asyncpg.Pool,
    account_id: UUID,
    marketplace_id: str,
    action: Action,
    *,
    at: dt.datetime,
    reason: str | None = None,
    notify: Callable[[], None] | None = None,
) -> CommandResult:
    """Run one participation command: load the stream, decide, append with the expected version.

    A concurrent command on the same (account, marketplace) makes the append fail: we reload and decide
    once more (the other command may have made ours invalid), and answer 409 if it conflicts again.
    """
    stream = domain.stream_id(account_id, marketplace_id)
    for attempt in (1, 2):
        try:
            async with pool.acquire() as conn, conn.transaction():
                if await store.get_account(conn, account_id) is None:
                    raise Problem(404, "Not found", "no such account (not registered, or not known to regions yet)")
                state, version = await _load(conn, account_id, marketplace_id)
                try:
                    event = domain.decide(
                        state, action, account_id=account_id, marketplace_id=marketplace_id, at=at, reason=reason
                    )
                except domain.Rejected as rejected:
                    raise Problem(
                        409,
                        "Transition not allowed",
                        rejected.reason,
                        code=rejected.code,
                        action=str(action),
                        marketplace_id=marketplace_id,
                        state=str(state.status),
                    ) from None
                await eventstore.append(conn, stream, version, [event])
                new_state = domain.evolve(state, event)
                await store.save_participation(conn, account_id, marketplace_id, new_state, version + 1)
        except ConcurrencyError:
            if attempt == 1:
                log.info("concurrent command; retrying", extra={"stream": stream, "action": str(action)})
                continue
            raise Problem(
                409, "Concurrent change", "another change to this participation happened at the same time; retry"
            ) from None
        if notify is not None:
            notify()
        return CommandResult(marketplace_id, new_state, version + 1, event.NAME)
    raise AssertionError("unreachable")  # pragma: no cover


# -- identity.accounts.v1 ---------------------------------------------------------------------------
async def on_registrations(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
    """A batch's registrations, in log order (each opens its home marketplace through the event store)."""
    for received in events:
        assert isinstance(received.event, AccountRegistered)
        await register_account(conn, received.event)


# The consumer of identity.accounts.v1: only registrations concern regions (other types are no-ops).
HANDLERS = HandlerTable(by_type={AccountRegistered: on_registrations})


async def on_identity_event(conn: asyncpg.Connection, received: ReceivedEvent) -> None:
    """Consumer handler (runs inside the consumer's transaction; duplicates are filtered before it)."""
    event = received.event
    if isinstance(event, AccountRegistered):
        await register_account(conn, event)


async def register_account(conn: asyncpg.Connection, event: AccountRegistered) -> None:
    """The account becomes known and its home marketplace participation opens at ``registered_at``."""
    try:
        home = catalog.resolve(event.home_marketplace_id)
    except catalog.UnknownMarketplace as exc:
        raise PoisonEvent(str(exc)) from None
    registered_at = event.registered_at
    if registered_at.tzinfo is None:
        registered_at = registered_at.replace(tzinfo=dt.UTC)
    await store.insert_account(
        conn,
        store.Account(
            account_id=event.account_id,
            legal_name=event.legal_name,
            home_marketplace_id=home.marketplace_id,
            owner_user_id=event.owner_user_id,
            registered_at=registered_at,
        ),
    )
    state, version = await _load(conn, event.account_id, home.marketplace_id)
    if version > 0:  # already opened (the same registration published twice under another id)
        return
    opened = ParticipationOpened(account_id=event.account_id, marketplace_id=home.marketplace_id, at=registered_at)
    await eventstore.append(conn, domain.stream_id(event.account_id, home.marketplace_id), 0, [opened])
    await store.save_participation(conn, event.account_id, home.marketplace_id, domain.evolve(state, opened), 1)


# -- FX import --------------------------------------------------------------------------------------
@dataclass(slots=True)
class ImportReport:
    days_in_file: int = 0
    days_considered: int = 0
    published: int = 0  # new days (revision 1)
    corrected: int = 0  # changed days (revision + 1)
    unchanged: int = 0
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    corrected_dates: list[dt.date] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "days_in_file": self.days_in_file,
            "days_considered": self.days_considered,
            "published": self.published,
            "corrected": self.corrected,
            "unchanged": self.unchanged,
            "first_date": self.first_date.isoformat() if self.first_date else None,
            "last_date": self.last_date.isoformat() if self.last_date else None,
            "corrected_dates": [d.isoformat() for d in self.corrected_dates[:100]],
        }


def fx_stream(date: dt.date) -> str:
    return f"fx-{date.isoformat()}"


FX_CHUNK_DAYS = 500


async def import_fx(
    pool: asyncpg.Pool,
    data: bytes,
    *,
    filename: str,
    origin: str | None = None,
    since: dt.date | None = None,
    notify: Callable[[], None] | None = None,
) -> ImportReport:
    """Parse a whole ECB file (any error rejects it with its line: ``ecb.FxFileError``), then publish each
    new or changed day as one FxRatesPublished, all in one transaction with batched statements."""
    days = await asyncio.to_thread(ecb.parse_file, data, filename)  # CPU-bound: keep the loop free
    return await import_days(pool, days, origin=origin or filename, since=since, notify=notify)


async def import_days(
    pool: asyncpg.Pool,
    days: list[ecb.DayRates],
    *,
    origin: str,
    since: dt.date | None = None,
    notify: Callable[[], None] | None = None,
    extra_derived: dict[str, str] | None = None,
) -> ImportReport:
    """Publish each new or changed day of parsed rates (``extra_derived``: currency -> which other source gave
    it, for currencies ECB does not publish)."""
    report = ImportReport(days_in_file=len(days))
    chosen = sorted((d for d in days if since is None or d.date >= since), key=lambda d: d.date)
    report.days_considered = len(chosen)
    if not chosen:
        return report
    report.first_date, report.last_date = chosen[0].date, chosen[-1].date
    source = f"ECB euro foreign exchange reference rates ({origin}); {domain.pegged_source_note()}"
    async with pool.acquire() as conn, conn.transaction():
        await store.lock_appends(conn)  # no other append between reading revisions and writing ours
        existing = await store.stored_days(conn, [d.date for d in chosen])
        to_save: list[store.FxDay] = []
        events: list[tuple[str, int, FxRatesPublished]] = []
        for day in chosen:
            rates, derived = domain.with_pegged(day.rates)
            derived = {**derived, **{c: how for c, how in (extra_derived or {}).items() if c in rates}}
            previous = existing.get(day.date)
            revision = domain.fx_revision(previous, rates)
            if revision is None:
                report.unchanged += 1
                continue
            if revision > 1:
                report.corrected += 1
                report.corrected_dates.append(day.date)
            else:
                report.published += 1
            to_save.append(store.FxDay(day.date, rates, derived, source, revision))
            event = FxRatesPublished(date=day.date, rates=rates, source=source, derived=derived, revision=revision)
            events.append((fx_stream(day.date), revision - 1, event))
        # The whole history is thousands of days: written in chunks (still one transaction) with progress.
        occurred_at = dt.datetime.now(dt.UTC)
        with ProgressReport(f"importing FX days ({origin})", total=len(to_save)) as progress:
            for start in range(0, len(to_save), FX_CHUNK_DAYS):
                await store.save_days(conn, to_save[start : start + FX_CHUNK_DAYS])
                await store.append_many(conn, events[start : start + FX_CHUNK_DAYS], occurred_at=occurred_at)
                progress.advance(len(to_save[start : start + FX_CHUNK_DAYS]))
    if notify is not None and events:
        notify()
    return report
