"""Operator commands for the outbox quarantine of one service database:

    python -m unified_shared.outbox list    [--database-url DSN] [--relay default] [--all]
    python -m unified_shared.outbox repair  POSITION [--occurred-at 2026-09-01T10:00:00Z]
    python -m unified_shared.outbox release POSITION [--skip]

``repair`` fixes the row's occurred_at (default: when it was recorded), the known cause of an event
without a valid envelope; ``release`` lets the running relay try the row again, then the rows of its key
that wait behind it, in order; ``release --skip`` gives the row up (never published) and lets them go on.
The database URL defaults to ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime

from unified_shared import outbox_quarantine as quarantine
from unified_shared.db import connect


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m unified_shared.outbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--relay", default="default", help="relay name (default: default)")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="quarantined rows (failed, and those held behind them)")
    listing.add_argument("--all", action="store_true", help="also skipped rows")
    repair = sub.add_parser("repair", help="fix a quarantined row's occurred_at")
    repair.add_argument("position", type=int)
    repair.add_argument("--occurred-at", type=datetime.fromisoformat, default=None)
    release = sub.add_parser("release", help="let the relay try a failed row again (or --skip it)")
    release.add_argument("position", type=int)
    release.add_argument("--skip", action="store_true", help="never publish it; the rows behind it go on")
    return parser


async def run(args: argparse.Namespace) -> int:
    if not args.database_url:
        print("no database: pass --database-url or set DATABASE_URL", file=sys.stderr)
        return 2
    conn = await connect(args.database_url)
    try:
        if args.command == "list":
            statuses = (*quarantine.BLOCKING, "skipped") if args.all else quarantine.BLOCKING
            for q in await quarantine.rows(conn, args.relay, statuses=statuses):
                print(json.dumps(q.to_json(), sort_keys=True))
            return 0
        if args.command == "repair":
            when = args.occurred_at
            if when is not None and when.tzinfo is None:
                print("--occurred-at needs a UTC offset", file=sys.stderr)
                return 2
            fixed = await quarantine.repair_time(conn, args.position, when)
            if fixed is None:
                print(f"position {args.position} is not quarantined", file=sys.stderr)
                return 1
            print(f"position {args.position}: occurred_at = {fixed.isoformat()}; release it to publish")
            return 0
        if await quarantine.release(conn, args.relay, args.position, skip=args.skip):
            print(f"position {args.position} {'skipped' if args.skip else 'released'}")
            return 0
        print(f"position {args.position} is not a failed row of relay {args.relay}", file=sys.stderr)
        return 1
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(_parser().parse_args(argv)))
