"""CLI: ``python -m unified_web serve|migrate``."""

from __future__ import annotations

import argparse
import asyncio

from unified_web.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m unified_web", description="unified-seller web app")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the web app (applies migrations on start)")
    sub.add_parser("migrate", help="create the session database if missing and apply the migrations")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "serve":
        from unified_shared.runtime import serve
        from unified_web.bootstrap import bootstrap

        serve(bootstrap(settings), settings)
    else:
        from unified_shared.db import migrate_database
        from unified_web.bootstrap import MIGRATIONS

        applied = asyncio.run(migrate_database(settings.database_url, MIGRATIONS))
        print(f"{len(applied)} migrations applied" + (f": {', '.join(applied)}" if applied else ""))


if __name__ == "__main__":
    main()
