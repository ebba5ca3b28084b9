"""Generations of the read model: one PostgreSQL schema (``view_<n>``) and one consumer name each.

The pointer row names the live generation; the API reads it in the same transaction as its queries, so a
switch is atomic for readers. A new generation starts with its consumer offsets at the database's origin
(each topic's log start in production), so it replays the whole history on its own.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import TopicPartition

from unified_shared import topics
from unified_shared.db import Migration, load_migrations
from unified_shared.kafka import make_reader

log = logging.getLogger(__name__)

TOPICS: tuple[str, ...] = (
    topics.IDENTITY_ACCOUNTS,
    topics.REGIONS_SUBSCRIPTIONS,
    topics.REGIONS_FX_RATES,
    topics.ORDERS,
    topics.BUYER_MESSAGES,
    topics.BILLING_INVOICES,
    topics.LISTINGS_OFFERS,
)

Origin = dict[str, dict[str, int]]  # topic -> partition (as text) -> first offset of the view's history


STEPS_PACKAGE = "unified_seller_view.readmodel"
LEGACY_READMODEL_CHECKSUM = "24488df0d87cd78f47279a30088b93365d3025ecba65eb0e98c56230199bad42"
"""What generations made from the single readmodel.sql of before the steps recorded as their checksum: its
text was steps 1, 3 and 4 together, so such a generation counts as having had them."""
_LEGACY_STEPS = frozenset({1, 3, 4})  # steps 3 and 4 were database migrations with the same numbers
StepList = list[tuple[int, str]]  # (version, checksum) of each step a generation has had, in order


def readmodel_steps() -> list[Migration]:
    """The read model's numbered DDL files in order: a new generation gets them all, an existing one those it
    has not had yet, so a change of the read model is written once, as the next file."""
    return load_migrations("seller_view readmodel", STEPS_PACKAGE)


def readmodel_ddl() -> str:
    """Every step as one script: the schema of a new generation (for schemas made without a generation)."""
    return "\n".join(step.sql for step in readmodel_steps())


def ddl_checksum(steps: StepList | None = None) -> str:
    """Of an ordered list of steps (by default all of them): a generation whose steps give the current one is
    current."""
    if steps is None:
        steps = [(step.version, step.checksum) for step in readmodel_steps()]
    return hashlib.sha256("\n".join(f"{version}:{checksum}" for version, checksum in steps).encode()).hexdigest()


def steps_component(schema: str) -> str:
    """Each generation's steps are recorded beside the database's migrations, under a component of its own."""
    return f"seller_view readmodel {schema}"


async def applied_steps(conn: asyncpg.Connection, schema: str) -> StepList:
    rows = await conn.fetch(
        "SELECT version, checksum FROM schema_migrations WHERE component = $1 ORDER BY version",
        steps_component(schema),
    )
    return [(r["version"], r["checksum"]) for r in rows]


async def _record_step(conn: asyncpg.Connection, schema: str, step: Migration) -> None:
    await conn.execute(
        "INSERT INTO schema_migrations (component, version, name, checksum) VALUES ($1, $2, $3, $4)",
        steps_component(schema),
        step.version,
        step.name,
        step.checksum,
    )


async def _apply_steps(conn: asyncpg.Connection, schema: str, steps: list[Migration]) -> None:
    """Run ``steps`` in the generation's schema and record them, in the caller's transaction."""
    for step in steps:
        await use_schema(conn, schema)
        await conn.execute(step.sql)
        await conn.execute("SET LOCAL search_path TO public")
        await _record_step(conn, schema, step)


@dataclass(frozen=True, slots=True)
class Generation:
    """A row of view_generations: where a generation lives, who fills it and from which read model."""

    number: int
    schema: str
    consumer_name: str
    state: str
    origin: Origin
    ddl_checksum: str

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Generation:
        return cls(
            row["generation"],
            row["schema_name"],
            row["consumer_name"],
            row["state"],
            row["origin"] or {},
            row["ddl_checksum"],
        )


def schema_name(number: int) -> str:
    return f"view_{number}"


def consumer_name(base: str, number: int) -> str:
    return f"{base}.g{number}"


async def use_schema(conn: asyncpg.Connection, schema: str) -> None:
    """Point unqualified names at the generation (then public, for the shared consumer tables) until the
    end of the current transaction."""
    if not schema.replace("_", "").isalnum():
        raise ValueError(f"bad schema name {schema!r}")
    await conn.execute(f'SET LOCAL search_path TO "{schema}", public')


async def live_generation(conn: asyncpg.Connection) -> Generation | None:
    row = await conn.fetchrow(
        """SELECT g.* FROM view_pointer p JOIN view_generations g ON g.generation = p.generation
           WHERE p.singleton"""
    )
    return Generation.from_row(row) if row else None


async def generation(conn: asyncpg.Connection, number: int) -> Generation | None:
    row = await conn.fetchrow("SELECT * FROM view_generations WHERE generation = $1", number)
    return Generation.from_row(row) if row else None


async def all_generations(conn: asyncpg.Connection) -> list[Generation]:
    return [Generation.from_row(r) for r in await conn.fetch("SELECT * FROM view_generations ORDER BY generation")]


async def database_origin(conn: asyncpg.Connection) -> Origin | None:
    """The origin of the first generation: every later generation replays from the same place."""
    value = await conn.fetchval("SELECT origin FROM view_generations ORDER BY generation LIMIT 1")
    return value if value is not None else None


async def create_generation(conn: asyncpg.Connection, base_name: str, origin: Origin, state: str) -> Generation:
    """A new, empty schema with the read-model tables and its consumer's offsets set to the origin."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE view_generations IN EXCLUSIVE MODE")
        number = int(await conn.fetchval("SELECT coalesce(max(generation), 0) + 1 FROM view_generations"))
        schema = schema_name(number)
        name = consumer_name(base_name, number)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute("DELETE FROM schema_migrations WHERE component = $1", steps_component(schema))
        await _apply_steps(conn, schema, readmodel_steps())
        await conn.execute("DELETE FROM consumer_offsets WHERE consumer = $1", name)
        await conn.execute("DELETE FROM consumer_processed_events WHERE consumer = $1", name)
        for topic, partitions in sorted(origin.items()):
            for partition, offset in sorted(partitions.items()):
                await conn.execute(
                    "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset) VALUES ($1, $2, $3, $4)",
                    name,
                    topic,
                    int(partition),
                    int(offset),
                )
        row = await conn.fetchrow(
            """INSERT INTO view_generations (generation, schema_name, consumer_name, state, origin, ddl_checksum)
               VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING *""",
            number,
            schema,
            name,
            state,
            origin,
            ddl_checksum(),
        )
        if state == "live":
            await conn.execute(
                """INSERT INTO view_pointer (singleton, generation) VALUES (true, $1)
                   ON CONFLICT (singleton) DO UPDATE SET generation = EXCLUDED.generation, switched_at = now()""",
                number,
            )
            await conn.execute("UPDATE view_generations SET switched_at = now() WHERE generation = $1", number)
        return Generation.from_row(row)


async def switch_to(conn: asyncpg.Connection, number: int) -> None:
    """Make ``number`` the live generation in one transaction; the previous one is retired (kept)."""
    async with conn.transaction():
        await conn.execute("UPDATE view_generations SET state = 'retired' WHERE state = 'live'")
        await conn.execute(
            "UPDATE view_generations SET state = 'live', switched_at = now() WHERE generation = $1", number
        )
        await conn.execute(
            """INSERT INTO view_pointer (singleton, generation) VALUES (true, $1)
               ON CONFLICT (singleton) DO UPDATE SET generation = EXCLUDED.generation, switched_at = now()""",
            number,
        )


async def drop_generation(conn: asyncpg.Connection, gen: Generation) -> None:
    """Remove a retired or failed generation: its schema and its consumer's bookkeeping."""
    async with conn.transaction():
        live = await live_generation(conn)
        if live is not None and live.number == gen.number:
            raise RuntimeError("refusing to drop the live generation")
        await conn.execute(f'DROP SCHEMA IF EXISTS "{gen.schema}" CASCADE')
        await conn.execute("DELETE FROM consumer_offsets WHERE consumer = $1", gen.consumer_name)
        await conn.execute("DELETE FROM consumer_processed_events WHERE consumer = $1", gen.consumer_name)
        await conn.execute("DELETE FROM view_generations WHERE generation = $1", gen.number)
        await conn.execute("DELETE FROM schema_migrations WHERE component = $1", steps_component(gen.schema))


async def upgrade_generations(conn: asyncpg.Connection) -> list[str]:
    """Give every generation the steps it has not had yet (after the database's migrations); returns what was
    applied. A generation that was current stays current. One that cannot take a step (built before the tables
    the step changes) is left as it was, outdated, for a rebuild to replace."""
    steps = readmodel_steps()
    done: list[str] = []
    async with conn.transaction():
        await conn.execute("LOCK TABLE view_generations IN EXCLUSIVE MODE")
        migrated = {
            r["version"]
            for r in await conn.fetch("SELECT version FROM schema_migrations WHERE component = 'seller_view'")
        }
        for gen in await all_generations(conn):
            if await conn.fetchval("SELECT to_regnamespace($1)", gen.schema) is None:
                continue
            applied = await applied_steps(conn, gen.schema)
            current = gen.ddl_checksum == ddl_checksum(applied)
            if not applied:  # made before the steps: it had those its readmodel.sql and the migrations gave
                for step in steps:
                    if step.version in _LEGACY_STEPS and (step.version == 1 or step.version in migrated):
                        await _record_step(conn, gen.schema, step)
                applied = await applied_steps(conn, gen.schema)
                current = gen.ddl_checksum == LEGACY_READMODEL_CHECKSUM
            pending = [step for step in steps if step.version not in dict(applied)]
            try:
                async with conn.transaction():
                    await _apply_steps(conn, gen.schema, pending)
            except asyncpg.PostgresError as exc:
                log.warning(
                    "a generation could not take the read model's next steps: rebuild to replace it",
                    extra={"generation": gen.number, "schema": gen.schema, "error": str(exc)},
                )
                continue
            done.extend(f"{gen.schema}:{step.version:03d}_{step.name}" for step in pending)
            if current:
                await conn.execute(
                    "UPDATE view_generations SET ddl_checksum = $2 WHERE generation = $1",
                    gen.number,
                    ddl_checksum(await applied_steps(conn, gen.schema)),
                )
    return done


async def stored_offsets(conn: asyncpg.Connection, name: str) -> dict[tuple[str, int], int]:
    rows = await conn.fetch("SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer = $1", name)
    return {(r["topic"], r["partition"]): int(r["next_offset"]) for r in rows}


async def end_offsets(bootstrap: str, names: tuple[str, ...] = TOPICS) -> dict[tuple[str, int], int]:
    """The current end (high-water mark) of every partition of the topics."""
    consumer = make_reader(bootstrap, client_id="seller-view-end-offsets")
    await consumer.start()
    try:
        parts: list[TopicPartition] = []
        for topic in names:
            found = consumer.partitions_for_topic(topic)
            if not found:
                await consumer._client.force_metadata_update()
                found = consumer.partitions_for_topic(topic) or set()
            parts.extend(TopicPartition(topic, p) for p in sorted(found))
        ends: dict[Any, int] = await consumer.end_offsets(parts)
        return {(tp.topic, tp.partition): int(off) for tp, off in ends.items()}
    finally:
        await consumer.stop()


def origin_from_offsets(offsets: dict[tuple[str, int], int]) -> Origin:
    origin: Origin = {}
    for (topic, partition), offset in sorted(offsets.items()):
        origin.setdefault(topic, {})[str(partition)] = offset
    return origin


async def ensure_live_generation(
    conn: asyncpg.Connection, base_name: str, origin_mode: str, bootstrap: str
) -> Generation:
    """The live generation; the first start of a database creates generation 1 at the configured origin
    (``earliest``: every topic's log start; ``latest``: the current ends, for a view of new events only)."""
    live = await live_generation(conn)
    if live is not None:
        return live
    await conn.execute("SELECT pg_advisory_lock($1)", _FIRST_GENERATION_LOCK)
    try:
        live = await live_generation(conn)
        if live is not None:
            return live
        origin: Origin = {}
        if origin_mode == "latest":
            origin = origin_from_offsets(await end_offsets(bootstrap))
        elif origin_mode != "earliest":
            raise ValueError(f"view origin must be 'earliest' or 'latest', not {origin_mode!r}")
        return await create_generation(conn, base_name, origin, "live")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _FIRST_GENERATION_LOCK)


_FIRST_GENERATION_LOCK = 0x5E1E55
