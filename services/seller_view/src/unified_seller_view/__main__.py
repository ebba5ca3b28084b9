"""CLI: ``python -m unified_seller_view serve|migrate|rebuild|generations|dump``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from uuid import UUID

from unified_seller_view import generations as gens
from unified_seller_view.settings import Settings


async def _migrate(settings: Settings) -> None:
    from unified_seller_view.runtime import MIGRATIONS
    from unified_shared.db import connect, migrate_database

    applied = await migrate_database(settings.database_url, [MIGRATIONS])
    conn = await connect(settings.database_url)
    try:
        applied += await gens.upgrade_generations(conn)
        live = await gens.ensure_live_generation(
            conn, settings.consumer_base, settings.view_origin, settings.kafka_bootstrap_servers
        )
    finally:
        await conn.close()
    print(f"migrations applied: {', '.join(applied) or 'none'}; live generation {live.number} ({live.schema})")


async def _generations(settings: Settings) -> None:
    from unified_shared.db import connect

    conn = await connect(settings.database_url)
    try:
        live = await gens.live_generation(conn)
        current = gens.ddl_checksum()
        for g in await gens.all_generations(conn):
            mark = "*" if live and g.number == live.number else " "
            ddl = "current" if g.ddl_checksum == current else "outdated (rebuild to apply the read model)"
            print(f"{mark} {g.number:>3} {g.schema:<10} {g.state:<8} consumer={g.consumer_name} readmodel={ddl}")
    finally:
        await conn.close()


async def _dump(settings: Settings, number: int | None, accounts: list[UUID] | None) -> None:
    from unified_seller_view import store
    from unified_shared.db import connect

    conn = await connect(settings.database_url)
    try:
        gen = await gens.generation(conn, number) if number else await gens.live_generation(conn)
        if gen is None:
            raise SystemExit("no such generation")
        sys.stdout.write(await store.dump(conn, gen.schema, accounts))
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="unified_seller_view", description="unified seller view")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP API and the consumer")
    sub.add_parser("migrate", help="apply migrations and create the first generation if none")
    rebuild = sub.add_parser("rebuild", help="replay every topic into a new generation, then switch to it")
    rebuild.add_argument("--keep", type=int, default=1, help="retired generations to keep (default 1)")
    rebuild.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed to catch up")
    sub.add_parser("generations", help="list the generations of the read model (* = live)")
    dump = sub.add_parser("dump", help="canonical dump of a generation's tables (default: the live one)")
    dump.add_argument("--generation", type=int)
    dump.add_argument("--account", action="append", type=UUID, help="only this account's rows (repeatable)")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "serve":
        from unified_seller_view.app import create_service_app
        from unified_shared.runtime import serve

        serve(create_service_app(settings), settings)
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
    elif args.command == "rebuild":
        from unified_seller_view.rebuild import rebuild as run_rebuild
        from unified_shared.logs import configure_logging

        configure_logging(settings.service_name, settings.log_level)
        gen = asyncio.run(run_rebuild(settings, keep=args.keep, timeout_s=args.timeout, progress=print))
        print(f"live generation: {gen.number} ({gen.schema})")
    elif args.command == "generations":
        asyncio.run(_generations(settings))
    elif args.command == "dump":
        asyncio.run(_dump(settings, args.generation, args.account))


if __name__ == "__main__":
    main()
