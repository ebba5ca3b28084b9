"""HTTP API of buyer-message threads. Bodies are plain text: returned as JSON strings exactly as received."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi import Body as BodyParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from unified_messages.domain import (
    BODY_LIMIT,
    ORDER_ID_RE,
    SUBJECT_LIMIT,
    THREAD_ID_RE,
    THREAD_STATES,
    urgency,
)
from unified_messages.handlers import BuyerMessage, CommandResult, MessagesHandlers, Reply
from unified_messages.store import StoredEntry, Thread
from unified_shared.auth import Principal, sp_api_principal
from unified_shared.bounds import Cursor, Instant, LineStr, MarketplaceId, QueryInstant, TextStr
from unified_shared.thread_timeline import REPLY_WINDOW

router = APIRouter(prefix="/messaging/v1", tags=["messages"])
ThreadState = Literal[THREAD_STATES]  # type: ignore[valid-type]


async def handlers(request: Request) -> MessagesHandlers:
    h: MessagesHandlers = request.app.state.handlers
    return h


ThreadId = Annotated[str, Path(pattern=THREAD_ID_RE.pattern, max_length=128)]
MessageId = Annotated[LineStr | None, Field(None, min_length=1, max_length=128, description="idempotency key")]
Body = Annotated[TextStr, Field(max_length=BODY_LIMIT, description="plain text; never interpreted")]


class BuyerMessageIn(BaseModel):
    marketplace_id: MarketplaceId = Field(examples=["A1PA6795UKMFR9"])
    message_id: MessageId = None
    amazon_order_id: str | None = Field(None, pattern=ORDER_ID_RE.pattern, examples=["302-1234567-1234567"])
    subject: LineStr = Field(max_length=SUBJECT_LIMIT, description="plain text, one line")
    body: Body
    received_at: Instant


class ReplyIn(BaseModel):
    body: Body
    replied_at: Instant | None = Field(None, description="default: now")
    message_id: MessageId = None


class MarkIn(BaseModel):
    at: Instant | None = Field(None, description="default: now")


class ThreadOut(BaseModel):
    thread_id: str
    marketplace_id: str
    amazon_order_id: str | None
    subject: str
    state: ThreadState
    awaiting_since: str | None
    reply_deadline: str | None
    is_overdue: bool
    due_within_4h: bool
    last_activity_at: str | None
    buyer_messages: int
    replies: int


class CommandOut(BaseModel):
    outcome: Literal["received", "replied", "marked", "unchanged"]
    id: str
    thread: ThreadOut


class ThreadsOut(BaseModel):
    threads: list[ThreadOut]
    as_of: str
    reply_window_hours: float
    next_token: str | None = None


class EntryOut(BaseModel):
    kind: Literal["buyer_message", "seller_reply", "no_response_needed"]
    at: str | None
    message_id: str | None = None
    body: str | None = None
    subject: str | None = None
    amazon_order_id: str | None = None
    by: str | None = None


class ThreadDetailOut(ThreadOut):
    as_of: str
    entries: list[EntryOut]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def thread_json(thread: Thread, now: datetime) -> dict[str, Any]:
    """A thread with its reply deadline and how urgent it is at ``now``."""
    due = urgency(thread.reply_deadline, now)
    return {
        "thread_id": thread.thread_id,
        "marketplace_id": thread.marketplace_id,
        "amazon_order_id": thread.amazon_order_id,
        "subject": thread.subject,
        "state": thread.state,
        "awaiting_since": _iso(thread.awaiting_since),
        "reply_deadline": _iso(thread.reply_deadline),
        "is_overdue": due.is_overdue,
        "due_within_4h": due.due_within_4h,
        "last_activity_at": _iso(thread.last_activity_at),
        "buyer_messages": thread.buyer_messages,
        "replies": thread.replies,
    }


def entry_json(entry: StoredEntry) -> dict[str, Any]:
    if entry.kind == "mark":
        return {"kind": "no_response_needed", "at": _iso(entry.at), "by": str(entry.actor) if entry.actor else None}
    out: dict[str, Any] = {
        "kind": "buyer_message" if entry.kind == "buyer" else "seller_reply",
        "message_id": entry.entry_id,
        "at": _iso(entry.at),
        "body": entry.body,
    }
    if entry.kind == "buyer":
        out["subject"] = entry.subject
        out["amazon_order_id"] = entry.amazon_order_id
    else:
        out["by"] = str(entry.actor) if entry.actor else None
    return out


def _result(result: CommandResult, h: MessagesHandlers, created: bool) -> JSONResponse:
    body = {"outcome": result.outcome, "id": result.entry_id, "thread": thread_json(result.thread, h.clock())}
    return JSONResponse(body, status_code=201 if created and result.outcome != "unchanged" else 200)


@router.post(
    "/threads/{thread_id}/buyer-messages",
    summary="Record a buyer message (idempotent by message_id)",
    response_model=CommandOut,
    status_code=201,
)
async def post_buyer_message(
    thread_id: ThreadId,
    payload: BuyerMessageIn = BodyParam(...),
    principal: Principal = Depends(sp_api_principal),
    h: MessagesHandlers = Depends(handlers),
) -> JSONResponse:
    result = await h.receive(principal, BuyerMessage(thread_id=thread_id, **payload.model_dump()))
    return _result(result, h, created=True)


@router.post(
    "/threads/{thread_id}/replies",
    summary="Record a seller reply (idempotent by message_id)",
    response_model=CommandOut,
    status_code=201,
)
async def post_reply(
    thread_id: ThreadId,
    payload: ReplyIn = BodyParam(...),
    principal: Principal = Depends(sp_api_principal),
    h: MessagesHandlers = Depends(handlers),
) -> JSONResponse:
    return _result(await h.reply(principal, Reply(thread_id=thread_id, **payload.model_dump())), h, created=True)


@router.post(
    "/threads/{thread_id}/no-response-needed",
    summary="Mark the awaiting thread as needing no reply",
    response_model=CommandOut,
)
async def post_no_response_needed(
    thread_id: ThreadId,
    payload: MarkIn | None = BodyParam(None),
    principal: Principal = Depends(sp_api_principal),
    h: MessagesHandlers = Depends(handlers),
) -> JSONResponse:
    result = await h.mark_no_response_needed(principal, thread_id, payload.at if payload else None)
    return _result(result, h, created=False)


@router.get(
    "/threads",
    summary="Threads by state, with reply deadline, is_overdue and due_within_4h",
    response_model=ThreadsOut,
    response_model_exclude_unset=True,
)
async def get_threads(
    *,
    state: ThreadState | None = Query(None, description="awaiting_reply | replied | no_response_needed"),
    marketplace_id: MarketplaceId | None = Query(None),
    limit: int | None = Query(None, ge=1, le=100, description="1..100, default 50"),
    next_token: Cursor | None = Query(None),
    as_of: QueryInstant | None = Query(
        None, description="compute is_overdue / due_within_4h at this time (default now)"
    ),
    principal: Principal = Depends(sp_api_principal),
    h: MessagesHandlers = Depends(handlers),
) -> dict[str, Any]:
    now = as_of or h.clock()
    threads, token = await h.list_threads(
        principal, state=state, marketplace_id=marketplace_id, limit=limit, next_token=next_token
    )
    out: dict[str, Any] = {
        "threads": [thread_json(t, now) for t in threads],
        "as_of": _iso(now),
        "reply_window_hours": REPLY_WINDOW.total_seconds() / 3600,
    }
    if token is not None:
        out["next_token"] = token
    return out


@router.get(
    "/threads/{thread_id}",
    summary="One thread with its messages, replies and marks in time order",
    response_model=ThreadDetailOut,
)
async def get_thread(
    thread_id: ThreadId,
    as_of: QueryInstant | None = Query(None),
    principal: Principal = Depends(sp_api_principal),
    h: MessagesHandlers = Depends(handlers),
) -> dict[str, Any]:
    now = as_of or h.clock()
    thread, entries = await h.get_thread(principal, thread_id)
    return {**thread_json(thread, now), "as_of": _iso(now), "entries": [entry_json(e) for e in entries]}
