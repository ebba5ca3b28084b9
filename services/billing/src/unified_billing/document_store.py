"""SQL (asyncpg) for billing's issued documents (invoices, supplementary invoices, credit notes: never changed once
issued). Every function runs on the caller's connection/transaction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from unified_billing.domain import Document, DocumentKind, IssuedDocument, Period
from unified_billing.results import StoredDocument

_DOCUMENT = "document_id, kind, account_id, period, currency, invoice_id, total, discount, reason, issued_at, lines"

# -- documents ------------------------------------------------------------------------------------------


async def issued_documents(conn: asyncpg.Connection, account_id: UUID, period: Period) -> list[IssuedDocument]:
    rows = await conn.fetch(
        "SELECT document_id, kind, currency, lines FROM billing_documents WHERE account_id = $1 AND period = $2",
        account_id,
        str(period),
    )
    out = []
    for r in rows:
        amounts: dict[str, Decimal] = {}
        for line in r["lines"]:
            amounts[line["marketplace_id"]] = amounts.get(line["marketplace_id"], Decimal(0)) + Decimal(line["amount"])
        out.append(IssuedDocument(r["document_id"], DocumentKind(r["kind"]), r["currency"], amounts))
    return out


async def insert_document(
    conn: asyncpg.Connection, doc: Document, issued_at: dt.datetime, lines: list[dict[str, Any]]
) -> None:
    """``lines``: the document's lines in their stored (contract JSON) form."""
    await conn.execute(
        """INSERT INTO billing_documents
               (document_id, kind, account_id, period, currency, invoice_id, seq, total, discount, reason, lines,
                issued_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)""",
        doc.document_id,
        str(doc.kind),
        doc.account_id,
        str(doc.period),
        doc.currency,
        doc.invoice_id,
        doc.seq,
        doc.total,
        doc.discount,
        doc.reason,
        lines,
        issued_at,
    )


async def list_documents(
    conn: asyncpg.Connection, account_id: UUID, *, period: str | None = None, currency: str | None = None
) -> list[StoredDocument]:
    rows = await conn.fetch(
        f"""SELECT {_DOCUMENT} FROM billing_documents
           WHERE account_id = $1 AND ($2::text IS NULL OR period = $2) AND ($3::text IS NULL OR currency = $3)
           ORDER BY period, currency, issued_at, document_id""",
        account_id,
        period,
        currency,
    )
    return [StoredDocument(**r) for r in rows]


async def get_document(conn: asyncpg.Connection, account_id: UUID, document_id: str) -> StoredDocument | None:
    row = await conn.fetchrow(
        f"SELECT {_DOCUMENT} FROM billing_documents WHERE account_id = $1 AND document_id = $2",
        account_id,
        document_id,
    )
    return StoredDocument(**row) if row else None


async def documents_referring_to(conn: asyncpg.Connection, account_id: UUID, invoice_id: str) -> list[StoredDocument]:
    rows = await conn.fetch(
        f"""SELECT {_DOCUMENT} FROM billing_documents WHERE account_id = $1 AND invoice_id = $2 AND document_id <> $2
           ORDER BY issued_at, document_id""",
        account_id,
        invoice_id,
    )
    return [StoredDocument(**r) for r in rows]
