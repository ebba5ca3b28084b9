"""SQL of the read model's invoices and credit notes.
Like every read-model SQL module, each function runs on a connection whose search_path names
the generation's schema first (see ``generations.use_schema``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

# -- billing ----------------------------------------------------------------------------------------


async def upsert_invoice(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO invoices (account_id, invoice_id, period, currency, kind, total, discount, issued_at, lines)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
           ON CONFLICT (account_id, invoice_id) DO NOTHING""",
        row["account_id"],
        row["invoice_id"],
        row["period"],
        row["currency"],
        row["kind"],
        row["total"],
        row["discount"],
        row["issued_at"],
        row["lines"],
    )


async def upsert_credit_note(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO credit_notes (account_id, credit_note_id, invoice_id, period, currency, reason, total,
               issued_at, lines) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
           ON CONFLICT (account_id, credit_note_id) DO NOTHING""",
        row["account_id"],
        row["credit_note_id"],
        row["invoice_id"],
        row["period"],
        row["currency"],
        row["reason"],
        row["total"],
        row["issued_at"],
        row["lines"],
    )


async def latest_invoices(conn: asyncpg.Connection, account_id: UUID, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM invoices WHERE account_id = $1
           ORDER BY period DESC, issued_at DESC, invoice_id LIMIT $2""",
        account_id,
        limit,
    )


async def credit_notes_for(conn: asyncpg.Connection, account_id: UUID, invoice_ids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM credit_notes WHERE account_id = $1 AND invoice_id = ANY($2::text[])
           ORDER BY issued_at, credit_note_id""",
        account_id,
        invoice_ids,
    )
