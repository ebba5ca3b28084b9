"""The event contracts of unified-seller, installable without the platform (``pip install unified-contracts``).

Every event published on Kafka is a CloudEvents 1.0 record in binary mode (``ce_*`` headers, JSON value, key =
account ID) whose value follows the JSON Schema of its ``ce_type``. A consumer in any language validates with
these files; the platform's ``make contracts-check`` refuses a change that would break an existing consumer, and
a breaking change gets a new type version (``.v2``), so a downstream team pins ``unified-contracts~=1.0``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["asyncapi", "event_types", "schema", "topic_of"]


def _read(folder: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files(__name__).joinpath(folder, name).read_text(encoding="utf-8"))
    return data


def event_types() -> list[str]:
    """Every CloudEvents type with a schema, e.g. ``unifiedseller.orders.OrderPlaced.v1``."""
    folder = resources.files(__name__).joinpath("schemas")
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))


def schema(ce_type: str) -> dict[str, Any]:
    """The JSON Schema of one event type (KeyError when there is none)."""
    if ce_type not in event_types():
        raise KeyError(ce_type)
    return _read("schemas", f"{ce_type}.json")


def topic_of(ce_type: str) -> str:
    """The Kafka topic an event type is published on."""
    return str(schema(ce_type)["x-topic"])


def asyncapi(service: str) -> dict[str, Any]:
    """A service's AsyncAPI document (channels it publishes and consumes), e.g. ``asyncapi("billing")``."""
    return _read("asyncapi", f"{service}.json")
