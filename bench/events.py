"""A throwaway event type and topic for the benchmarks (a fresh name per process)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from unified_shared.events import AccountEvent, event_type

RUN = uuid.uuid4().hex[:8]
TOPIC = f"bench.plumbing.{RUN}"
PARTITIONS = 3


@event_type
class Tick(AccountEvent):
    DOMAIN: ClassVar[str] = "bench"
    NAME: ClassVar[str] = f"Tick{RUN}"
    TOPIC: ClassVar[str] = TOPIC
    n: int
    note: str = "a bench event of about the size of an order event, with some text in it"
