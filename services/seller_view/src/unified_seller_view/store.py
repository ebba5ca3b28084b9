"""SQL of the read model. Every function runs on a connection whose search_path names the generation's
schema first (see ``generations.use_schema``), so the same statements serve the live view and a rebuild."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

# -- canonical dump ---------------------------------------------------------------------------------


async def dump(conn: asyncpg.Connection, schema: str, account_ids: list[UUID] | None = None) -> str:
    """Every row of the generation's tables as sorted JSON lines: equal dumps mean byte-for-byte equal views.
    With ``account_ids``: only those accounts' rows of the per-account tables (the FX tables are left out)."""
    tables = await conn.fetch(
        """SELECT table_name,
                  EXISTS (SELECT 1 FROM information_schema.columns c
                          WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name
                            AND c.column_name = 'account_id') AS per_account
           FROM information_schema.tables t WHERE table_schema = $1 AND table_type = 'BASE TABLE'
           ORDER BY table_name""",
        schema,
    )
    parts: list[str] = []
    for t in tables:
        name = t["table_name"]
        where = ""
        args: list[Any] = []
        if account_ids is not None and not t["per_account"]:
            continue
        if account_ids is not None:
            where = "WHERE account_id = ANY($1::uuid[])"
            args = [account_ids]
        rows = await conn.fetch(
            f'SELECT row_to_json(x)::text AS j FROM "{schema}"."{name}" x {where} ORDER BY 1',
            *args,
        )
        parts.append(f"## {name} ({len(rows)})")
        parts.extend(r["j"] for r in rows)
    return "\n".join(parts) + "\n"


def as_json(value: Any) -> Any:
    """jsonb columns come back decoded by the pool's codec; plain json text (json_agg) may not."""
    return json.loads(value) if isinstance(value, str) else value
