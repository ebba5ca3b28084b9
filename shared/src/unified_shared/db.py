"""asyncpg pools and versioned SQL migrations.

Migrations are ``NNN_name.sql`` files inside a package. Each component (the shared plumbing, then the
service) keeps its own sequence in ``schema_migrations``; an advisory lock lets several instances start at
once, and re-running is a no-op. A changed, already-applied file is an error, never silently re-applied.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x5E11E5  # one advisory lock id for every database of the project


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


# A request must not hang for asyncpg's default 60 s connect timeout while the database is down: it answers
# 503 + Retry-After after this long instead.
CONNECT_TIMEOUT_S = 5.0


class PooledConnection(asyncpg.Connection):
    """A pool connection that can go back to the pool without asyncpg's reset query (``RESET ALL``,
    ``pg_advisory_unlock_all()``, ``UNLISTEN *``, ``CLOSE ALL``): one round trip per use, skipped only when
    its user vouched that it left no session state (``session_free``)."""

    __slots__ = ("_left_clean",)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._left_clean = False

    def left_clean(self) -> None:
        self._left_clean = True

    def take_left_clean(self) -> bool:
        left_clean, self._left_clean = self._left_clean, False
        return left_clean


async def _reset(conn: asyncpg.Connection) -> None:
    """The pool's reset: asyncpg's reset query, unless the connection was used ``session_free`` (an open
    transaction was already rolled back by the pool either way)."""
    if isinstance(conn, PooledConnection) and conn.take_left_clean():
        return
    query = conn.get_reset_query()
    if query:
        await conn.execute(query)


# asyncpg prepares and caches statements up to 15 KiB by default; a longer one is parsed, analysed and planned
# again at every execution, with an extra round trip (seller_view's summaries statements are 20-25 KiB and run
# once per consumer batch). Cached, PostgreSQL plans them and after five runs may keep a generic plan.
MAX_CACHEABLE_STATEMENT_SIZE = 64 * 1024


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_cacheable_statement_size=MAX_CACHEABLE_STATEMENT_SIZE,
        init=_init_connection,
        reset=_reset,
        connection_class=PooledConnection,
        timeout=CONNECT_TIMEOUT_S,
    )
    assert pool is not None
    return pool


@contextlib.asynccontextmanager
async def session_free(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pool connection for work that leaves no session state behind: transactions and plain statements,
    ``SET LOCAL`` and ``pg_advisory_xact_lock`` (they end with the transaction), never ``SET`` without LOCAL,
    a session advisory lock, ``LISTEN`` or a cursor ``WITH HOLD``. It goes back to the pool without the reset
    query when the block ends normally outside a transaction; after an error it is reset as usual."""
    async with pool.acquire() as conn:
        yield conn
        mark = getattr(conn, "left_clean", None)  # absent on a pool not made by create_pool
        if mark is not None and not conn.is_in_transaction():
            mark()


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, max_cacheable_statement_size=MAX_CACHEABLE_STATEMENT_SIZE)
    await _init_connection(conn)
    return conn


@dataclass(frozen=True, slots=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def load_migrations(component: str, package: str) -> list[Migration]:
    """Read ``NNN_name.sql`` files of ``package`` in version order."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        prefix, _, rest = entry.name.partition("_")
        if not prefix.isdigit():
            raise MigrationError(f"migration {entry.name} must start with a number")
        found.append(Migration(component, int(prefix), rest.removesuffix(".sql"), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {package}")
    return found


SHARED_COMPONENT = ("shared", "unified_shared.migrations")


async def apply_migrations(conn: asyncpg.Connection, components: list[tuple[str, str]]) -> list[str]:
    """Apply every pending migration of each (component, package); returns what was applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   component TEXT NOT NULL,
                   version INT NOT NULL,
                   name TEXT NOT NULL,
                   checksum TEXT NOT NULL,
                   applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                   PRIMARY KEY (component, version))"""
        )
        for component, package in components:
            done: dict[int, Any] = {
                r["version"]: r
                for r in await conn.fetch(
                    "SELECT version, name, checksum FROM schema_migrations WHERE component = $1", component
                )
            }
            for migration in load_migrations(component, package):
                previous = done.get(migration.version)
                if previous is not None:
                    if previous["checksum"] != migration.checksum:
                        raise MigrationError(
                            f"{component} migration {migration.version} ({migration.name}) changed after it was applied"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)",
                        component,
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                applied.append(f"{component}:{migration.version:03d}_{migration.name}")
                log.info("migration applied", extra={"component": component, "version": migration.version})
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def ensure_database(admin_dsn: str, name: str) -> bool:
    """Create database ``name`` through an admin connection if missing; True if it was created."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


async def ensure_database_of(dsn: str) -> bool:
    """Create the database ``dsn`` names if it is missing (through the server's ``postgres`` database)."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    if not name or name == "postgres":
        return False
    return await ensure_database(urlunsplit(parts._replace(path="/postgres")), name)


async def migrate_database(dsn: str, components: Sequence[tuple[str, str]]) -> list[str]:
    """A service's ``migrate`` command: its database created if missing, then the shared plumbing's
    migrations and the service's own applied. Returns what was applied (nothing on a re-run)."""
    await ensure_database_of(dsn)
    conn = await connect(dsn)
    try:
        return await apply_migrations(conn, [SHARED_COMPONENT, *components])
    finally:
        await conn.close()


async def migrated_pool(dsn: str, components: Sequence[tuple[str, str]] = ()) -> asyncpg.Pool:
    """A pool on an existing database with the shared plumbing's migrations and ``components`` applied (the
    caller closes it): what tests and tools open before they read or write a service's tables."""
    pool = await create_pool(dsn)
    async with pool.acquire() as conn:
        await apply_migrations(conn, [SHARED_COMPONENT, *components])
    return pool
