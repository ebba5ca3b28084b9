"""CLI: ``python -m unified_messages serve|migrate`` (REGION=NA|EU|FE picks the instance)."""

from __future__ import annotations

import argparse
import asyncio
import json

from unified_messages.app import MIGRATIONS, create_service_app
from unified_messages.settings import Settings
from unified_shared.db import migrate_database
from unified_shared.runtime import serve


async def _migrate(settings: Settings) -> list[str]:
    return await migrate_database(settings.database_url, MIGRATIONS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="unified_messages", description="unified-seller regional buyer-messages service"
    )
    parser.add_argument("command", choices=["serve", "migrate", "settings"])
    parser.add_argument("--region", choices=["NA", "EU", "FE"], help="overrides the REGION environment variable")
    args = parser.parse_args(argv)
    settings = Settings(region=args.region) if args.region else Settings()
    if args.command == "serve":
        serve(create_service_app(settings), settings)
    elif args.command == "migrate":
        applied = asyncio.run(_migrate(settings))
        print(
            f"{settings.service_name}: {len(applied)} migrations applied"
            + (f" ({', '.join(applied)})" if applied else "")
        )
    else:
        shown = settings.model_dump(include={"region", "service_name", "http_host", "http_port", "database_url"})
        print(json.dumps(shown, default=str, indent=2))


if __name__ == "__main__":
    main()
