"""CLI: ``python -m unified_listings serve|migrate``."""

from __future__ import annotations

import argparse
import asyncio

from unified_listings.app import MIGRATIONS, create_service_app
from unified_listings.settings import Settings
from unified_shared.db import migrate_database
from unified_shared.runtime import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="unified_listings", description="unified-seller listings service")
    parser.add_argument("command", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "serve":
        serve(create_service_app(settings), settings)
    else:
        applied = asyncio.run(migrate_database(settings.database_url, MIGRATIONS))
        print(
            f"{settings.service_name}: {len(applied)} migrations applied"
            + (f" ({', '.join(applied)})" if applied else "")
        )


if __name__ == "__main__":
    main()
