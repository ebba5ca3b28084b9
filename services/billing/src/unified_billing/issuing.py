"""The contract form of what billing issues: invoice lines and the InvoiceIssued / CreditNoteIssued events (the
store keeps the lines' JSON, the API and the events carry the contract models)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from unified_billing.domain import ChargeLine, Document, DocumentKind
from unified_shared.contracts.billing import CreditNoteIssued, InvoiceIssued, InvoiceLine
from unified_shared.events import Event


def line_model(line: ChargeLine) -> InvoiceLine:
    """The contract's line: the same fields, but for the cap's rate, which the contract calls ``fx_rate_usd``."""
    fields = dataclasses.asdict(line)
    fields["fx_rate_usd"] = fields.pop("fx_to_cap")
    return InvoiceLine.model_validate(fields)


def lines_json(lines: tuple[ChargeLine, ...] | list[ChargeLine]) -> list[dict[str, Any]]:
    """The stored form of a document's lines (the contract model's JSON: amounts as exact decimal strings)."""
    return [line_model(line).model_dump(mode="json") for line in lines]


def document_event(doc: Document, issued_at: dt.datetime) -> Event:
    lines = [line_model(line) for line in doc.lines]
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
