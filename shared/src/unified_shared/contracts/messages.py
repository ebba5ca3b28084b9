"""Events on ``messages.buyer-messages.v1``."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from unified_shared.events import AccountEvent, event_type
from unified_shared.topics import BUYER_MESSAGES


class _MessageEvent(AccountEvent):
    """A change of one buyer-message thread, recorded by the regional messages service of ``region``."""

    DOMAIN: ClassVar[str] = "messages"
    TOPIC: ClassVar[str] = BUYER_MESSAGES
    marketplace_id: str
    thread_id: str
    region: Literal["NA", "EU", "FE"]
    # Added (optional): the thread's state and reply deadline right after this event, as the regional
    # service computed them from the whole thread (the deadline only while it awaits a reply).
    thread_state: Literal["awaiting_reply", "replied", "no_response_needed"] | None = None
    reply_deadline: datetime | None = None


@event_type
class BuyerMessageReceived(_MessageEvent):
    message_id: str
    amazon_order_id: str | None = None
    received_at: datetime
    subject: str
    body: str


@event_type
class SellerReplied(_MessageEvent):
    message_id: str
    replied_at: datetime
    body: str
    replied_by: UUID | None = None


@event_type
class MarkedNoResponseNeeded(_MessageEvent):
    at: datetime
    marked_by: UUID | None = None
