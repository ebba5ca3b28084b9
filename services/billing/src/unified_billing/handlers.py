"""Commands and event handlers: record inputs, close periods (exactly once), preview the open period.

Closing one account's period is one transaction: an advisory lock on (account, period) serializes billing
instances, the issued documents are compared with what is due now, the difference is inserted (unique IDs)
and appended to the event store (expected version) as InvoiceIssued / CreditNoteIssued events.

Facts and closes of one account are serialized by a second advisory lock on the account: a close holds it
shared from before it reads the facts until it commits, the consumer takes it exclusively after recording
a batch's facts and before marking closed periods dirty. So a fact is either read by a close or marks its
committed period dirty; it can never fall between a close's read and its commit. A close waits for these locks at most
``close_lock_timeout_s`` (the consumer takes the account's lock only after writing a batch's facts, so it
holds it just until that batch commits): then it gives up with ``AccountBusy`` and the period stays due.

A run closes many account periods; one that fails (busy, or any error) is logged, counted, recorded (so the
next runs try it after the others) and the run goes on with the rest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
from prometheus_client import Counter, Gauge

from unified_billing import domain, store
from unified_billing.domain import Cap, Document, DocumentKind, FactKind, Held, Period, PeriodCharges
from unified_billing.settings import Settings
from unified_shared import eventstore
from unified_shared.catalog import UnknownMarketplace, by_id
from unified_shared.consumer import Apply, HandlerTable, PoisonEvent, ReceivedEvent, per_event
from unified_shared.contracts.billing import CreditNoteIssued, InvoiceIssued
from unified_shared.contracts.identity import AccountRegistered
from unified_shared.contracts.regions import FxRatesPublished
from unified_shared.events import Event
from unified_shared.progress import ProgressReport

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

HELD_PERIODS = Gauge("billing_held_periods", "Account periods held because data they need is missing")
DOCUMENTS_ISSUED = Counter("billing_documents_issued_total", "Invoices and credit notes issued", ["kind"])
CLOSE_RUNS = Counter("billing_period_closes_total", "Account-period close attempts, by outcome", ["outcome"])
CLOSE_FAILURES = Counter(
    "billing_close_failures_total", "Account-period closes that failed (busy account, error)", ["reason"]
)

_LOCK_CLASS = 0x0B111  # advisory lock namespace of (account, period) closes
_FACTS_LOCK_CLASS = 0x0B112  # advisory lock namespace of an account's facts (closes shared, consumer exclusive)
_FACT_KINDS = {k.value for k in FactKind}
LATE_EVENTS_REASON = "recomputed after subscription or listing events for a closed period arrived late"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PeriodNotEnded(Exception):
    """Only an ended period can be closed (the open one can be previewed)."""


class AccountBusy(Exception):
    """The account's locks were not free within ``close_lock_timeout_s`` (the consumer is recording a batch
    of its facts, or another close of the period runs): nothing was done, the period stays due."""

    def __init__(self, account_id: UUID, period: Period) -> None:
        super().__init__(
            f"account {account_id} is busy (its facts are being recorded, or another close runs);"
            f" period {period} stays due"
        )
        self.account_id = account_id
        self.period = period


@dataclass(slots=True)
class CloseFailure:
    account_id: UUID
    period: str
    busy: bool  # the account's locks were not free in time (else an error)
    error: str


class CloseIncomplete(Exception):
    """A run closed what it could; these account periods failed and stay due (retried by later runs)."""

    def __init__(self, outcomes: list[AccountOutcome], failures: list[CloseFailure]) -> None:
        super().__init__(
            "; ".join(f"{f.account_id} {f.period}: {'busy' if f.busy else 'failed'} ({f.error})" for f in failures)
        )
        self.outcomes = outcomes
        self.failures = failures

    @property
    def only_busy(self) -> bool:
        return all(f.busy for f in self.failures)


# -- consuming ------------------------------------------------------------------------------------------


def handler_table() -> HandlerTable:
    """Billing's consumer: accounts and FX publications one by one; the subscription and listing facts (every
    other type: non-facts are ignored) as one group, last, so the account locks are held only to the commit."""
    single = per_event(apply_event)
    return HandlerTable(
        by_type={AccountRegistered: single, FxRatesPublished: single},
        default=Apply(apply_facts),
    )


async def apply_event(conn: asyncpg.Connection, received: ReceivedEvent) -> None:
    """Consumer handler: record the fact in billing's own tables (idempotent on the event ID)."""
    event = received.event
    event_id = received.event_id
    if isinstance(event, AccountRegistered):
        await store.record_account(
            conn,
            account_id=event.account_id,
            home_marketplace_id=_known_marketplace(event.home_marketplace_id),
            legal_name=event.legal_name,
            registered_at=event.registered_at,
            event_id=event_id,
        )
    elif isinstance(event, FxRatesPublished):
        await store.record_fx_publication(
            conn,
            rate_date=event.date,
            revision=event.revision,
            source=event.source,
            event_id=event_id,
            rates=event.rates,
            derived=event.derived,
        )
    elif _is_fact(event):
        await apply_facts(conn, [received])
    # Other events of these topics (invitations, members...) do not concern billing.


def _is_fact(event: Any) -> bool:
    return type(event).NAME in _FACT_KINDS and hasattr(event, "marketplace_id")


async def apply_facts(conn: asyncpg.Connection, events: Sequence[ReceivedEvent]) -> None:
    """Record a batch's subscription and listing facts (log order: ``seq`` breaks ties), then take the
    accounts' fact locks (sorted: no deadlock between consumers) and mark closed periods dirty.

    The locks are taken after the facts are written, at the end of the batch, so a close waits only for this
    batch's commit, never for its whole application. Still exact: a close that committed before the lock was
    granted is seen by the marking (each statement reads what is committed); one that starts later waits for
    this commit and then reads these facts."""
    earliest: dict[UUID, Period] = {}
    for received in events:
        event = received.event
        if not _is_fact(event):
            continue
        account_id: UUID = event.account_id  # type: ignore[attr-defined]
        at: dt.datetime = event.at  # type: ignore[attr-defined]
        recorded = await store.record_fact(
            conn,
            event_id=received.event_id,
            account_id=account_id,
            marketplace_id=_known_marketplace(event.marketplace_id),  # type: ignore[attr-defined]
            kind=FactKind(type(event).NAME),
            at=at,
        )
        if recorded:
            period = Period.of(at)
            if account_id not in earliest or str(period) < str(earliest[account_id]):
                earliest[account_id] = period
    for account_id in sorted(earliest, key=_account_lock_key):
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1::int, $2::int)", _FACTS_LOCK_CLASS, _account_lock_key(account_id)
        )
    for account_id, period in earliest.items():
        await store.mark_closed_periods_dirty(conn, account_id, period)


def _known_marketplace(marketplace_id: str) -> str:
    try:
        return by_id(marketplace_id).marketplace_id
    except UnknownMarketplace as exc:
        raise PoisonEvent(str(exc)) from None


# -- closing --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class IssuedRef:
    document_id: str
    kind: str
    currency: str
    total: str


@dataclass(slots=True)
class AccountOutcome:
    account_id: UUID
    period: str
    status: str  # "closed" or "held"
    reason: str | None = None
    issued: list[IssuedRef] = field(default_factory=list)


def _lock_key(account_id: UUID, period: Period) -> int:
    digest = hashlib.sha256(f"{account_id}:{period}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _account_lock_key(account_id: UUID) -> int:
    return int.from_bytes(account_id.bytes[:4], "big", signed=True)


def stream_id(account_id: UUID, period: Period) -> str:
    return f"billing-{account_id}-{period}"


def document_event(doc: Document, issued_at: dt.datetime) -> Event:
    lines = [store.line_model(line) for line in doc.lines]
    if doc.kind == DocumentKind.CREDIT_NOTE:
        return CreditNoteIssued(
            account_id=doc.account_id,
            credit_note_id=doc.document_id,
            invoice_id=doc.invoice_id,
            period=str(doc.period),
            currency=doc.currency,
            reason=doc.reason,
            lines=lines,
            total=doc.total,
            issued_at=issued_at,
        )
    return InvoiceIssued(
        account_id=doc.account_id,
        invoice_id=doc.document_id,
        period=str(doc.period),
        currency=doc.currency,
        lines=lines,
        total=doc.total,
        discount=doc.discount,
        issued_at=issued_at,
        kind=str(doc.kind),
    )


class Billing:
    """The billing service's commands, over a pool that exists once the service has started."""

    def __init__(
        self,
        settings: Settings,
        pool: Callable[[], asyncpg.Pool],
        *,
        clock: Clock | None = None,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._pool = pool
        self.clock: Clock = clock or utc_now
        self._notify = notify or (lambda: None)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    @property
    def cap(self) -> Cap:
        return Cap(self.settings.billing_cap_amount, self.settings.billing_cap_currency.upper())

    async def _compute(
        self, conn: asyncpg.Connection, account_id: UUID, period: Period, *, as_of: dt.date | None, final: bool
    ) -> PeriodCharges:
        day = min(period.last_day, as_of) if as_of else period.last_day
        return domain.compute_period(
            period,
            await store.load_facts(conn, account_id),
            home_marketplace_id=await store.home_marketplace(conn, account_id),
            schedule=await store.load_schedule(conn),
            publications=await store.load_publications(conn, day, lookback_days=self.settings.fx_lookback_days),
            cap=self.cap,
            as_of=as_of,
            final=final,
        )

    async def close_account_period(self, account_id: UUID, period: Period) -> AccountOutcome:
        """Issue what is due for (account, period) and not issued yet; hold it if data is missing."""
        now = self.clock()
        outcome = AccountOutcome(account_id, str(period), "closed")
        async with self.pool.acquire() as conn, conn.transaction():
            # Bounded waits for the locks only (the consumer holds the account's lock only until its batch commits); the
            # rest of the transaction waits as usual.
            timeout_ms = max(1, round(self.settings.close_lock_timeout_s * 1000))
            await conn.execute(f"SET LOCAL lock_timeout = {timeout_ms}")
            try:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1::int, $2::int)", _LOCK_CLASS, _lock_key(account_id, period)
                )
                # Shared with other closes of the account, exclusive with the consumer recording its facts.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock_shared($1::int, $2::int)",
                    _FACTS_LOCK_CLASS,
                    _account_lock_key(account_id),
                )
            except asyncpg.LockNotAvailableError:
                raise AccountBusy(account_id, period) from None
            await conn.execute("SET LOCAL lock_timeout = DEFAULT")
            await store.clear_close_failure(conn, account_id, period)
            try:
                charges = await self._compute(conn, account_id, period, as_of=None, final=True)
            except Held as held:
                await store.set_period_status(conn, account_id, period, "held", held.reason)
                outcome.status, outcome.reason = "held", held.reason
                CLOSE_RUNS.labels("held").inc()
                log.warning(
                    "billing period held",
                    extra={"account_id": str(account_id), "period": str(period), "reason": held.reason},
                )
                return outcome
            issued = await store.issued_documents(conn, account_id, period)
            docs = domain.plan_documents(account_id, charges, issued, reason=LATE_EVENTS_REASON)
            if docs:
                stream = stream_id(account_id, period)
                version = await eventstore.stream_version(conn, stream)
                for doc in docs:
                    await store.insert_document(conn, doc, now)
                await eventstore.append(conn, stream, version, [document_event(d, now) for d in docs], occurred_at=now)
            await store.set_period_status(conn, account_id, period, "closed", None)
            await store.advance_closed_through(conn, account_id, period)
        outcome.issued = [IssuedRef(d.document_id, str(d.kind), d.currency, format(d.total, "f")) for d in docs]
        for doc in docs:
            DOCUMENTS_ISSUED.labels(str(doc.kind)).inc()
        CLOSE_RUNS.labels("issued" if docs else "unchanged").inc()
        if docs:
            self._notify()
        return outcome

    async def close_period(self, period: Period, account_id: UUID | None = None) -> list[AccountOutcome]:
        """Close ``period`` for one or all accounts, then every earlier period that is due (never closed,
        late facts, held): a late fact for a month never closed is billed by the next run too."""
        if self.clock() < period.end():
            raise PeriodNotEnded(f"period {period} has not ended yet (it ends at {period.end().isoformat()})")
        if account_id is not None:
            accounts = [account_id]
        else:
            async with self.pool.acquire() as conn:
                accounts = await store.accounts_with_subscriptions(conn, period)
        outcomes: list[AccountOutcome] = []
        failures: list[CloseFailure] = []
        # A close over every account can take minutes: a bar in a terminal, a line every few seconds otherwise.
        progress = ProgressReport(f"closing {period}", total=len(accounts)) if account_id is None else None
        with progress or contextlib.nullcontext():
            for a in accounts:
                result = await self._close_or_record(a, period)
                if isinstance(result, CloseFailure):
                    failures.append(result)
                else:
                    outcomes.append(result)
                if progress is not None:
                    progress.advance()
        more, more_failures = await self._run_due(
            up_to=period, account_id=account_id, skip={(a, period) for a in accounts}
        )
        await self.refresh_gauge()
        if failures or more_failures:
            raise CloseIncomplete(outcomes + more, failures + more_failures)
        return outcomes + more

    async def _close_or_record(self, account_id: UUID, period: Period) -> AccountOutcome | CloseFailure:
        """Close one account period; if that fails, log, count and record it (the period stays due and later
        runs try it after the others) instead of stopping the run."""
        error: Exception | None = None
        try:
            return await self.close_account_period(account_id, period)
        except AccountBusy as exc:
            failure = CloseFailure(account_id, str(period), True, str(exc))
        except Exception as exc:
            error = exc
            failure = CloseFailure(account_id, str(period), False, repr(exc))
        reason = "busy" if failure.busy else "error"
        CLOSE_FAILURES.labels(reason).inc()
        CLOSE_RUNS.labels(reason).inc()
        attempts: int | None = None
        try:
            async with self.pool.acquire() as conn:
                attempts = await store.record_close_failure(conn, account_id, period, failure.error)
        except Exception as exc:  # e.g. the database is down: the period stays due all the same
            log.warning("could not record a failed close", extra={"error": repr(exc)})
        log.log(
            logging.WARNING if failure.busy else logging.ERROR,
            "billing close failed",
            exc_info=error,
            extra={
                "account_id": str(account_id),
                "period": str(period),
                "reason": reason,
                "error": failure.error,
                "attempts": attempts,
            },
        )
        return failure

    def retry_after_s(self) -> int:
        """A client may retry a busy close after about one lock wait."""
        return max(1, math.ceil(self.settings.close_lock_timeout_s))

    async def run_due(
        self,
        *,
        up_to: Period,
        account_id: UUID | None = None,
        skip: set[tuple[UUID, Period]] | None = None,
        limit: int | None = None,
    ) -> list[AccountOutcome]:
        """Close the due periods; the ones that fail are recorded and skipped (see ``_close_or_record``)."""
        outcomes, _ = await self._run_due(up_to=up_to, account_id=account_id, skip=skip, limit=limit)
        return outcomes

    async def _run_due(
        self,
        *,
        up_to: Period,
        account_id: UUID | None = None,
        skip: set[tuple[UUID, Period]] | None = None,
        limit: int | None = None,
    ) -> tuple[list[AccountOutcome], list[CloseFailure]]:
        async with self.pool.acquire() as conn:
            due = await store.due_periods(conn, up_to=up_to, account_id=account_id, limit=limit)
        outcomes: list[AccountOutcome] = []
        failures: list[CloseFailure] = []
        for a, p in due:
            if (a, p) in (skip or set()):
                continue
            result = await self._close_or_record(a, p)
            if isinstance(result, CloseFailure):
                failures.append(result)
            else:
                outcomes.append(result)
        return outcomes, failures

    async def scheduler_tick(self) -> list[AccountOutcome]:
        """Close every ended period that is due: never closed since the account's first subscription (also
        months that passed while billing was down), with late facts, or held. Oldest first, at most
        ``scheduler_max_closes_per_tick`` per tick (the next tick goes on)."""
        previous = Period.of(self.clock()).prev()
        outcomes = await self.run_due(up_to=previous, limit=self.settings.scheduler_max_closes_per_tick)
        await self.refresh_gauge()
        return outcomes

    async def refresh_gauge(self) -> int:
        async with self.pool.acquire() as conn:
            held = await store.count_held(conn)
        HELD_PERIODS.set(held)
        return held

    async def preview(self, account_id: UUID, period: Period | None = None) -> dict[str, Any]:
        """What would be charged if the period closed now (the open period: days up to today)."""
        now = self.clock()
        period = period or Period.of(now)
        ended = now >= period.end()
        as_of = None if ended else now.date()
        result: dict[str, Any] = {
            "account_id": account_id,
            "period": str(period),
            "as_of": (as_of or period.last_day).isoformat(),
            "final": ended,
            "cap": {"amount": format(self.cap.amount, "f"), "currency": self.cap.currency},
            "status": "preview",
            "held_reason": None,
            "first_period": False,
            "billable_marketplaces": [],
            "invoices": [],
        }
        if period.first_day > now.date():
            raise PeriodNotEnded(f"period {period} has not started yet")
        async with self.pool.acquire() as conn:
            try:
                charges = await self._compute(conn, account_id, period, as_of=as_of, final=ended)
            except Held as held:
                result.update(status="held", held_reason=held.reason)
                return result
        result["first_period"] = charges.first_period
        result["billable_marketplaces"] = list(charges.billable)
        for currency, lines in sorted(charges.by_currency().items()):
            result["invoices"].append(
                {
                    "currency": currency,
                    "invoice_id": domain.invoice_id(account_id, period, currency),
                    "total": format(sum(line.amount for line in lines), "f"),
                    "discount": format(sum(line.discount for line in lines), "f"),
                    "lines": [store.line_model(line).model_dump(mode="json") for line in lines],
                }
            )
        return result
