"""CLI: ``python -m unified_billing serve|migrate|close-period|preview|add-fee|fees|holds``.

Commands other than ``serve`` work on the database directly; the events they append are published by the
running service's outbox relay.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import asyncpg

from unified_billing import domain
from unified_billing.api import preview_out
from unified_billing.bootstrap import MIGRATIONS, billing_over, bootstrap
from unified_billing.handlers import CloseIncomplete, PeriodNotEnded
from unified_billing.settings import Settings
from unified_shared.catalog import UnknownMarketplace, resolve
from unified_shared.db import create_pool, migrate_database
from unified_shared.runtime import serve


def _json_default(value: Any) -> Any:
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(type(value))


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, default=_json_default))


async def _prepared_pool(settings: Settings) -> asyncpg.Pool:
    await migrate_database(settings.database_url, MIGRATIONS)
    return await create_pool(settings.database_url, max_size=2)


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    pool = await _prepared_pool(settings)
    try:
        billing = billing_over(pool, settings)
        if args.command == "migrate":
            print("migrations applied")
        elif args.command == "close-period":
            try:
                outcomes = await billing.close_period(domain.Period.parse(args.period), args.account)
            except PeriodNotEnded as exc:
                print(str(exc), file=sys.stderr)
                return 2
            except CloseIncomplete as exc:  # what did close, then the periods that stay due
                _print(
                    {
                        "period": args.period,
                        "results": [dataclasses.asdict(o) for o in exc.outcomes],
                        "failed": [dataclasses.asdict(f) for f in exc.failures],
                    }
                )
                return 3
            _print({"period": args.period, "results": [dataclasses.asdict(o) for o in outcomes]})
        elif args.command == "preview":
            period = domain.Period.parse(args.period) if args.period else None
            _print(preview_out(await billing.preview(args.account, period)).model_dump(mode="json"))
        elif args.command == "add-fee":
            market = resolve(args.marketplace)
            row = await billing.add_fee(
                marketplace_id=market.marketplace_id,
                currency=market.currency,
                fee=args.fee,
                effective_from=args.effective_from,
                note=args.note,
            )
            _print(dataclasses.asdict(row))
        elif args.command == "fees":
            in_force = await billing.fees_in_force(args.on)
            _print({"on": args.on, "fees": [dataclasses.asdict(r) for r in in_force]})
        elif args.command == "holds":
            _print([dataclasses.asdict(h) for h in await billing.holds()])
        return 0
    finally:
        await pool.close()


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a fee cannot be negative")
    return value


def _marketplace(text: str) -> str:
    try:
        return resolve(text).marketplace_id
    except UnknownMarketplace as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unified_billing", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP service, consumer, outbox relay and scheduler")
    sub.add_parser("migrate", help="create the database if missing and apply migrations")
    close = sub.add_parser("close-period", help="close an ended month YYYY-MM for all accounts or one")
    close.add_argument("period")
    close.add_argument("--account", type=UUID, default=None)
    preview = sub.add_parser("preview", help="what would be charged if the period closed now")
    preview.add_argument("--account", type=UUID, required=True)
    preview.add_argument("--period", default=None, help="YYYY-MM (default: the open period)")
    add_fee = sub.add_parser("add-fee", help="add a fee-schedule row (a fee change is a new row)")
    add_fee.add_argument("--marketplace", type=_marketplace, required=True, help="ID or code, e.g. DE")
    add_fee.add_argument("--fee", type=_decimal, required=True)
    add_fee.add_argument("--effective-from", type=dt.date.fromisoformat, required=True)
    add_fee.add_argument("--note", default="")
    fees = sub.add_parser("fees", help="the fees in force on a day")
    fees.add_argument("--on", type=dt.date.fromisoformat, default=dt.datetime.now(dt.UTC).date())
    sub.add_parser("holds", help="held account periods and why")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "serve":
        serve(bootstrap(settings), settings)
        return 0
    return asyncio.run(_run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
