"""Invoices, supplementary invoices and credit notes: what to issue so that what was issued equals what is due
(issued documents never change)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from unified_billing.domain.charges import ChargeLine, PeriodCharges
from unified_billing.domain.periods import ZERO, Period


# -- documents ------------------------------------------------------------------------------------------
class DocumentKind(StrEnum):
    INVOICE = "invoice"
    SUPPLEMENTARY = "supplementary"
    CREDIT_NOTE = "credit_note"


def _account_hash(account_id: UUID, period: Period, currency: str) -> str:
    return hashlib.sha256(f"{account_id}:{period}:{currency}".encode()).hexdigest()[:16].upper()


def invoice_id(account_id: UUID, period: Period, currency: str) -> str:
    """Deterministic: the same (account, period, currency) always gives the same ID."""
    return f"INV-{period}-{currency}-{_account_hash(account_id, period, currency)}"


def supplementary_id(account_id: UUID, period: Period, currency: str, seq: int) -> str:
    return f"{invoice_id(account_id, period, currency)}-S{seq}"


def credit_note_id(account_id: UUID, period: Period, currency: str, seq: int) -> str:
    return f"CN-{period}-{currency}-{_account_hash(account_id, period, currency)}-{seq}"


@dataclass(frozen=True, slots=True)
class IssuedDocument:
    """An issued invoice or credit note, as far as the comparison needs it."""

    document_id: str
    kind: DocumentKind
    currency: str
    amounts: Mapping[str, Decimal]  # marketplace -> amount on the document (credit notes: credited, >= 0)


@dataclass(frozen=True, slots=True)
class Document:
    """A document to issue."""

    document_id: str
    kind: DocumentKind
    account_id: UUID
    period: Period
    currency: str
    lines: tuple[ChargeLine, ...]
    invoice_id: str  # the period's invoice for this currency (itself, for an invoice)
    seq: int
    reason: str = ""
    total: Decimal = field(default=ZERO)
    discount: Decimal = field(default=ZERO)


def issued_net(documents: Iterable[IssuedDocument], currency: str) -> dict[str, Decimal]:
    """Net amount issued per marketplace in ``currency``: invoices minus credit notes."""
    net: dict[str, Decimal] = {}
    for doc in documents:
        if doc.currency != currency:
            continue
        sign = -1 if doc.kind == DocumentKind.CREDIT_NOTE else 1
        for mp, amount in doc.amounts.items():
            net[mp] = net.get(mp, ZERO) + sign * amount
    return net


def plan_documents(
    account_id: UUID, charges: PeriodCharges, issued: Sequence[IssuedDocument], *, reason: str
) -> list[Document]:
    """What to issue so that the net issued per marketplace equals what is due; issued documents never change.

    Nothing issued yet in a currency: its invoice (deterministic ID). Otherwise, per marketplace, a shortfall
    goes on a supplementary invoice and an excess on a credit note. Equal: nothing (closing twice is a no-op).
    """
    period = charges.period
    due = charges.by_currency()
    currencies = sorted(set(due) | {d.currency for d in issued})
    out: list[Document] = []
    for currency in currencies:
        lines = due.get(currency, [])
        docs = [d for d in issued if d.currency == currency]
        base_id = invoice_id(account_id, period, currency)
        common: dict[str, Any] = {"account_id": account_id, "period": period, "currency": currency, "base_id": base_id}
        if not docs:
            if lines:
                out.append(_document(DocumentKind.INVOICE, base_id, lines, **common, seq=0, reason=""))
            continue
        net = issued_net(docs, currency)
        due_by_mp = {line.marketplace_id: line for line in lines}
        extra: list[ChargeLine] = []
        credit: list[ChargeLine] = []
        for mp in sorted(set(net) | set(due_by_mp)):
            line = due_by_mp.get(mp)
            now_due = line.amount if line else ZERO
            delta = now_due - net.get(mp, ZERO)
            if delta == ZERO:
                continue
            adj = _adjustment_line(mp, currency, line, was=net.get(mp, ZERO), now=now_due, delta=abs(delta))
            (extra if delta > ZERO else credit).append(adj)
        if extra:
            seq = 1 + sum(1 for d in docs if d.kind == DocumentKind.SUPPLEMENTARY)
            doc_id = supplementary_id(account_id, period, currency, seq)
            out.append(_document(DocumentKind.SUPPLEMENTARY, doc_id, extra, **common, seq=seq, reason=reason))
        if credit:
            seq = 1 + sum(1 for d in docs if d.kind == DocumentKind.CREDIT_NOTE)
            doc_id = credit_note_id(account_id, period, currency, seq)
            out.append(_document(DocumentKind.CREDIT_NOTE, doc_id, credit, **common, seq=seq, reason=reason))
    return out


def _adjustment_line(
    mp: str, currency: str, line: ChargeLine | None, *, was: Decimal, now: Decimal, delta: Decimal
) -> ChargeLine:
    description = f"adjustment: issued {was}, due {now}"
    if line is None:
        return ChargeLine(mp, currency, ZERO, ZERO, delta, ZERO, description=description + " (no longer billable)")
    # The due line (same marketplace and currency) with its fee, ratio and rates: only the amount differs.
    return replace(line, amount=delta, discount=ZERO, description=description)


def _document(
    kind: DocumentKind,
    document_id: str,
    lines: Sequence[ChargeLine],
    *,
    account_id: UUID,
    period: Period,
    currency: str,
    base_id: str,
    seq: int,
    reason: str,
) -> Document:
    return Document(
        document_id=document_id,
        kind=kind,
        account_id=account_id,
        period=period,
        currency=currency,
        lines=tuple(lines),
        invoice_id=base_id,
        seq=seq,
        reason=reason,
        total=sum((line.amount for line in lines), ZERO),
        discount=sum((line.discount for line in lines), ZERO),
    )
