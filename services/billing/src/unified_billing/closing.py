"""Closing periods (exactly once): one account period per transaction, and runs over many.

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
import logging
import math
from uuid import UUID

from prometheus_client import Counter, Gauge

from unified_billing import document_store, domain, locks, store
from unified_billing.base import BillingBase
from unified_billing.domain import Held, Period
from unified_billing.issuing import document_event, lines_json
from unified_billing.results import AccountOutcome, CloseFailure, IssuedRef
from unified_shared import eventstore
from unified_shared.errors import Conflict
from unified_shared.progress import ProgressReport

log = logging.getLogger(__name__)

HELD_PERIODS = Gauge("billing_held_periods", "Account periods held because data they need is missing")
DOCUMENTS_ISSUED = Counter("billing_documents_issued_total", "Invoices and credit notes issued", ["kind"])
CLOSE_RUNS = Counter("billing_period_closes_total", "Account-period close attempts, by outcome", ["outcome"])
CLOSE_FAILURES = Counter(
    "billing_close_failures_total", "Account-period closes that failed (busy account, error)", ["reason"]
)
LATE_EVENTS_REASON = "recomputed after subscription or listing events for a closed period arrived late"


class PeriodNotEnded(Conflict):
    """Only an ended period can be closed (the open one can be previewed)."""

    title = "Period not ended"


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


def stream_id(account_id: UUID, period: Period) -> str:
    return f"billing-{account_id}-{period}"


class Closing(BillingBase):
    async def close_account_period(self, account_id: UUID, period: Period) -> AccountOutcome:
        """Issue what is due for (account, period) and not issued yet; hold it if data is missing."""
        now = self.clock()
        outcome = AccountOutcome(account_id, str(period), "closed")
        async with self.pool.acquire() as conn, conn.transaction():
            # Bounded waits for the locks (the consumer holds the account's lock only until its batch commits).
            if not await locks.lock_for_close(conn, account_id, period, timeout_s=self.settings.close_lock_timeout_s):
                raise AccountBusy(account_id, period)
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
            issued = await document_store.issued_documents(conn, account_id, period)
            docs = domain.plan_documents(account_id, charges, issued, reason=LATE_EVENTS_REASON)
            if docs:
                stream = stream_id(account_id, period)
                version = await eventstore.stream_version(conn, stream)
                for doc in docs:
                    await document_store.insert_document(conn, doc, now, lines_json(doc.lines))
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
            raise PeriodNotEnded("period", f"period {period} has not ended yet (it ends at {period.end().isoformat()})")
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

    async def _run_due(
        self,
        *,
        up_to: Period,
        account_id: UUID | None = None,
        skip: set[tuple[UUID, Period]] | None = None,
        limit: int | None = None,
    ) -> tuple[list[AccountOutcome], list[CloseFailure]]:
        """Close the due periods; the ones that fail are recorded and skipped (see ``_close_or_record``)."""
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
        outcomes, _ = await self._run_due(up_to=previous, limit=self.settings.scheduler_max_closes_per_tick)
        await self.refresh_gauge()
        return outcomes

    async def refresh_gauge(self) -> int:
        async with self.pool.acquire() as conn:
            held = await store.count_held(conn)
        HELD_PERIODS.set(held)
        return held
