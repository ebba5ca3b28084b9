"""Helpers for a service's own tests: its settings for a test, a seller on a started regional instance, the
published schema of an event type, its command line run to the end. (The broker, issuer and app plumbing is in
``unified_shared.testing``.)"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from unified_shared.testing import SeenRecord, TestIssuer

Cfg = TypeVar("Cfg")


def published_schema(ce_type: str) -> dict[str, Any]:
    """The JSON Schema of an event type as published in the repository's ``docs/schemas`` (the contract check's
    files): tests validate the records they read off the topics against it."""
    path = Path(__file__).resolve().parents[3] / "docs" / "schemas" / f"{ce_type}.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def check_stream(
    records: Sequence[SeenRecord], *, types: Sequence[str], topic: str, key: str, source: str, subject: str
) -> None:
    """Assert that ``records`` are one stream's events as its relay publishes them, in order: of ``types``, on
    ``topic`` under ``key`` (also their partition key), CloudEvents of ``source`` for the stream ``subject`` at
    sequences 1, 2, ..., each JSON payload conforming to its type's published schema (the contract downstream
    teams read)."""
    import jsonschema  # a test dependency of the services that publish

    assert [r.headers["ce_type"] for r in records] == list(types)
    for sequence, record in enumerate(records, start=1):
        h = record.headers
        assert record.topic == topic
        assert record.key == key == h["ce_partitionkey"]
        assert h["ce_specversion"] == "1.0"
        uuid.UUID(h["ce_id"])
        assert (h["ce_source"], h["ce_subject"], h["ce_sequence"]) == (source, subject, str(sequence))
        assert h["content-type"] == "application/json"
        assert record.envelope.type == h["ce_type"]  # parses as a CloudEvent
        jsonschema.validate(record.value, published_schema(h["ce_type"]), cls=jsonschema.Draft202012Validator)


def service_settings(
    settings: Callable[..., Cfg],
    dsn: str,
    bootstrap: str,
    *,
    issuer: TestIssuer,
    jwks_url: str,
    group: str,
    **overrides: Any,
) -> Cfg:
    """A service's settings for a test: its own database and consumer group, the test broker, tokens of the
    test issuer, a relay that polls often (a missed wake-up costs 0.1 s, not seconds)."""
    values: dict[str, Any] = {
        "database_url": dsn,
        "kafka_bootstrap_servers": bootstrap,
        "consumer_group": group,
        "identity_issuer": issuer.issuer,
        "identity_jwks_url": jwks_url,
        "relay_poll_interval_s": 0.1,
    }
    return settings(**{**values, **overrides})


async def new_seller(
    start: Callable[..., Awaitable[str]], issuer: tuple[TestIssuer, str], region: str = "EU", **overrides: Any
) -> tuple[str, uuid.UUID, str]:
    """A regional instance of ``region`` started with these settings ``overrides`` (``regional_fixture``'s
    ``start``), a new account and its owner's token: ``(base URL, account, token)``."""
    base = await start(region, **overrides)
    account = uuid.uuid4()
    return base, account, issuer[0].mint(account_id=account)


async def run_module(
    package: str, *args: str, env: Mapping[str, str], merge_stderr: bool = False, timeout_s: float | None = None
) -> tuple[int, str, str]:
    """``python -m <package> <args>`` in a process of its own with ``env``, run to its end, as an operator runs a
    service's command: ``(exit code, stdout, stderr)``; ``merge_stderr``: stderr written into stdout, in order
    (and returned empty)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        package,
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), (err or b"").decode()
