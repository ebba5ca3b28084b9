"""The composition root convention, and the pieces every service's root wires the same way.

Each service has one ``bootstrap.py`` with ``bootstrap(settings, *, clock=system_clock, ...) -> FastAPI``:
the only place that builds the runtime, the units of work, gates and handlers and hands them to the API
(``app.state.handlers``). Nothing else constructs collaborators; tests call ``bootstrap`` with their own
settings and clock, and unit tests build handlers directly over ``uow.FakeUnits``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

import asyncpg
from fastapi import FastAPI

from unified_shared.config import ServiceSettings
from unified_shared.consumer import ReceivedEvent
from unified_shared.db import migrate_database
from unified_shared.participations import PARTICIPATIONS_MIGRATIONS, Gate, apply_subscription_event
from unified_shared.regional import RegionalSettings
from unified_shared.runtime import ConsumerSpec, ServiceRuntime, serve
from unified_shared.topics import REGIONS_SUBSCRIPTIONS
from unified_shared.uow import PgUnits

S = TypeVar("S")
Cfg = TypeVar("Cfg", bound=ServiceSettings)

__all__ = ["PARTICIPATIONS_MIGRATIONS", "participation_gate", "participations_consumer", "pg_units", "service_main"]


def pg_units(runtime: ServiceRuntime, store: Callable[[asyncpg.Connection], S]) -> PgUnits[S]:
    """Units of work over the runtime's pool that wake its outbox relay after each commit that appended."""
    return PgUnits(lambda: runtime.pool, store, runtime.notify_relay)


async def learn_participation(conn: asyncpg.Connection, received: ReceivedEvent) -> None:
    """Consumer handler: where each account may sell (new orders and threads need an opened marketplace)."""
    await apply_subscription_event(conn, received.event)


def participations_consumer(name: str) -> ConsumerSpec:
    """The consumer of regions.subscriptions.v1 that feeds a regional service's participation gate."""
    return ConsumerSpec(name, [REGIONS_SUBSCRIPTIONS], learn_participation)


def participation_gate(runtime: ServiceRuntime, settings: RegionalSettings) -> Gate | None:
    """The gate over what the runtime's consumer learned, or None where the settings switch it off."""
    if not settings.participation_required:
        return None
    return Gate(
        lambda: runtime.pool,
        lambda: runtime.consumer.caught_up_as_of if runtime.consumer else None,
        settle_s=settings.participation_settle_s,
        wait_s=settings.participation_wait_s,
    )


def service_main(
    argv: list[str] | None,
    *,
    settings: Callable[..., Cfg],
    bootstrap: Callable[[Cfg], FastAPI],
    migrations: Sequence[tuple[str, str]],
    description: str | None = None,
) -> None:
    """``python -m <service> serve|migrate|settings`` (``--region NA|EU|FE`` where the settings are
    ``RegionalSettings``): run the app ``bootstrap`` builds, create and migrate its database, or show the
    settings it would run with."""
    regional = isinstance(settings, type) and issubclass(settings, RegionalSettings)
    package = bootstrap.__module__.split(".")[0]
    parser = argparse.ArgumentParser(prog=f"python -m {package}", description=description)
    parser.add_argument("command", choices=["serve", "migrate", "settings"])
    if regional:
        parser.add_argument("--region", choices=["NA", "EU", "FE"], help="overrides the REGION environment variable")
    args = parser.parse_args(argv)
    region = getattr(args, "region", None)
    cfg = settings(region=region) if region else settings()
    if args.command == "serve":
        serve(bootstrap(cfg), cfg)
    elif args.command == "migrate":
        applied = asyncio.run(migrate_database(cfg.database_url, list(migrations)))
        print(
            f"{cfg.service_name}: {len(applied)} migrations applied" + (f" ({', '.join(applied)})" if applied else "")
        )
    else:
        shown = cfg.model_dump(include={"region", "service_name", "http_host", "http_port", "database_url"})
        print(json.dumps(shown, default=str, indent=2))
