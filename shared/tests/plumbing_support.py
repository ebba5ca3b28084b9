"""A throwaway event type and topic for testing the plumbing against the real broker."""

from __future__ import annotations

import uuid
from typing import ClassVar

from unified_shared.events import AccountEvent, event_type
from unified_shared.topics import TopicSpec

RUN = uuid.uuid4().hex[:8]
TEST_TOPIC = f"test.plumbing.{RUN}"
TEST_TOPIC_SPECS = [TopicSpec(TEST_TOPIC, 3), TopicSpec(f"{TEST_TOPIC}.dlq", 1)]


@event_type
class AmountAdded(AccountEvent):
    DOMAIN: ClassVar[str] = "test"
    NAME: ClassVar[str] = f"AmountAdded{RUN}"
    TOPIC: ClassVar[str] = TEST_TOPIC
    amount: int
