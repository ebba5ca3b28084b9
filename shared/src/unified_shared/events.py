"""The pydantic base of every event type and the registry that maps ``ce_type`` to its model.

An event type is named ``unifiedseller.<domain>.<Name>.v<version>`` and published on one topic. Payload
models ignore unknown fields so that adding an optional field never breaks an existing consumer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, PlainSerializer

# Amounts travel as JSON strings holding decimals ("12.09"), as in SP-API (DESIGN section 4).
DecimalString = Annotated[Decimal, PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")]


class Event(BaseModel):
    """Base of every event payload; its ``partition_key`` is the Kafka key."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    DOMAIN: ClassVar[str]
    NAME: ClassVar[str]
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str]

    @classmethod
    def ce_type(cls) -> str:
        return f"unifiedseller.{cls.DOMAIN}.{cls.NAME}.v{cls.VERSION}"

    def partition_key(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} must say what its Kafka key is")

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class AccountEvent(Event):
    """An event about one account: keyed by ``account_id`` so that an account's events stay in order."""

    account_id: UUID

    def partition_key(self) -> str:
        return str(self.account_id)


E = TypeVar("E", bound=type[Event])

_REGISTRY: dict[str, type[Event]] = {}


def event_type(cls: E) -> E:
    """Class decorator: register an event model under its ``ce_type``. Its ``NAME`` is the class's own name
    unless the class says otherwise."""
    if "NAME" not in vars(cls):
        cls.NAME = cls.__name__
    key = cls.ce_type()
    existing = _REGISTRY.get(key)
    if existing is not None and existing is not cls:
        raise ValueError(f"event type {key} registered twice")
    _REGISTRY[key] = cls
    return cls


def registered_types() -> dict[str, type[Event]]:
    _load_contracts()
    return dict(_REGISTRY)


def model_for(ce_type: str) -> type[Event] | None:
    _load_contracts()
    return _REGISTRY.get(ce_type)


def parse_event(ce_type: str, payload: bytes | str | dict[str, Any]) -> Event:
    """Validate a payload against its registered model; raises KeyError for an unknown type."""
    model = model_for(ce_type)
    if model is None:
        raise KeyError(ce_type)
    if isinstance(payload, dict):
        return model.model_validate(payload)
    return model.model_validate_json(payload)


def _load_contracts() -> None:
    # Importing the contracts package registers every public event type.
    from unified_shared import contracts  # noqa: F401
