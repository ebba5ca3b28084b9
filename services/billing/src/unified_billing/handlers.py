"""Billing's commands and queries as one object: closing periods (``closing``), the preview of an open period,
and what the API and the CLI read (documents, period states, holds, the fee schedule). The API and the CLI
reach the store only through here; the consumer's handlers are in ``consuming``."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from uuid import UUID

from unified_billing import document_store, domain, store
from unified_billing.closing import AccountBusy, CloseIncomplete, Closing, PeriodNotEnded
from unified_billing.consuming import apply_event, apply_facts, handler_table
from unified_billing.domain import FeeRow, Held, Period
from unified_billing.results import (
    AccountOutcome,
    HeldPeriod,
    PeriodStatus,
    Preview,
    PreviewInvoice,
    StoredDocument,
)

__all__ = [
    "AccountBusy",
    "AccountOutcome",
    "Billing",
    "CloseIncomplete",
    "PeriodNotEnded",
    "apply_event",
    "apply_facts",
    "handler_table",
]


class Billing(Closing):
    """The billing service's commands and queries, over a pool that exists once the service has started."""

    async def preview(self, account_id: UUID, period: Period | None = None) -> Preview:
        """What would be charged if the period closed now (the open period: days up to today)."""
        now = self.clock()
        period = period or Period.of(now)
        ended = now >= period.end()
        as_of = None if ended else now.date()
        if period.first_day > now.date():
            raise PeriodNotEnded("period", f"period {period} has not started yet", title="Period not started")
        preview = Preview(
            account_id=account_id,
            period=period,
            as_of=as_of or period.last_day,
            final=ended,
            cap_amount=self.cap.amount,
            cap_currency=self.cap.currency,
        )
        async with self.pool.acquire() as conn:
            try:
                charges = await self._compute(conn, account_id, period, as_of=as_of, final=ended)
            except Held as held:
                return replace(preview, status="held", held_reason=held.reason)
        invoices = tuple(
            PreviewInvoice(
                currency=currency,
                invoice_id=domain.invoice_id(account_id, period, currency),
                total=sum((line.amount for line in lines), Decimal(0)),
                discount=sum((line.discount for line in lines), Decimal(0)),
                lines=tuple(lines),
            )
            for currency, lines in sorted(charges.by_currency().items())
        )
        return replace(
            preview, first_period=charges.first_period, billable_marketplaces=tuple(charges.billable), invoices=invoices
        )

    # -- queries -------------------------------------------------------------------------------------------
    async def documents(
        self, account_id: UUID, *, period: str | None = None, currency: str | None = None
    ) -> list[StoredDocument]:
        async with self.pool.acquire() as conn:
            return await document_store.list_documents(conn, account_id, period=period, currency=currency)

    async def document(self, account_id: UUID, document_id: str) -> tuple[StoredDocument, list[StoredDocument]] | None:
        """One document and, for an invoice, the adjustments issued against it (None: no such document)."""
        async with self.pool.acquire() as conn:
            doc = await document_store.get_document(conn, account_id, document_id)
            if doc is None:
                return None
            related = (
                await document_store.documents_referring_to(conn, account_id, document_id)
                if doc.kind == "invoice"
                else []
            )
        return doc, related

    async def period_statuses(self, account_id: UUID) -> list[PeriodStatus]:
        async with self.pool.acquire() as conn:
            return await store.period_statuses(conn, account_id)

    async def holds(self) -> list[HeldPeriod]:
        async with self.pool.acquire() as conn:
            return await store.held_periods(conn)

    # -- the fee schedule (operator) -------------------------------------------------------------------------
    async def add_fee(
        self, *, marketplace_id: str, currency: str, fee: Decimal, effective_from: dt.date, note: str
    ) -> FeeRow:
        """A fee change is a new row (from ``effective_from`` on); rows are never changed."""
        async with self.pool.acquire() as conn:
            return await store.add_fee(
                conn,
                marketplace_id=marketplace_id,
                currency=currency,
                fee=fee,
                effective_from=effective_from,
                note=note,
            )

    async def fees_in_force(self, day: dt.date) -> list[FeeRow]:
        async with self.pool.acquire() as conn:
            schedule = await store.load_schedule(conn)
        return sorted(domain.fees_in_force(schedule, day).values(), key=lambda r: r.marketplace_id)
