"""Thread commands (buyer message, seller reply, "no response needed") and the thread reads.

Each command is one unit of work (``unified_shared.uow``): it locks its thread (commands of one thread queue,
other threads run side by side), records the entry, recomputes the thread from its whole timeline, appends
the event at the thread's version and saves the thread; the relay is woken after the commit. Repeating a
command with the same ID changes and publishes nothing. Refusals are shared domain errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from unified_messages.domain import (
    BODY_LIMIT,
    SUBJECT_LIMIT,
    THREAD_STATES,
    ThreadStatus,
    buyer_message_id,
    check_mark,
    check_order_id,
    check_reply,
    check_text,
    check_thread_id,
    reply_message_id,
    thread_status,
)
from unified_messages.store import MessagesStore, StoredEntry, Thread, ThreadHead, ThreadQuery, stream_id
from unified_shared.auth import Principal
from unified_shared.catalog import ApiRegion
from unified_shared.clock import Clock, system_clock
from unified_shared.contracts.messages import BuyerMessageReceived, MarkedNoResponseNeeded, SellerReplied
from unified_shared.cursors import decode_cursor, encode_cursor, key_json, parse_key
from unified_shared.errors import Conflict, Invalid, NotFound
from unified_shared.events import Event
from unified_shared.participations import Gate
from unified_shared.scope import check_marketplace, participation_refusal
from unified_shared.thread_timeline import mark_entry_id
from unified_shared.uow import UnitOfWork, Units

MAX_PAGE = 100
DEFAULT_PAGE = 50
FIELD = "marketplace_id"


@dataclass(frozen=True, slots=True)
class BuyerMessage:
    """A buyer message to record, as the API validated it; without ``message_id`` its ID is derived from its
    content, so sending it again records nothing new."""

    thread_id: str
    marketplace_id: str
    subject: str
    body: str
    received_at: datetime
    message_id: str | None = None
    amazon_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A seller reply to record (``replied_at`` None: now)."""

    thread_id: str
    body: str
    replied_at: datetime | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a thread command did (``unchanged``: a repeat of an entry already recorded), and the thread after it."""

    outcome: str  # received | replied | marked | unchanged
    entry_id: str
    thread: Thread


def _other_content(message_id: str) -> Conflict:
    return Conflict("message_id", f"message {message_id} was recorded with other content")


class MessagesHandlers:
    def __init__(
        self, units: Units[MessagesStore], region: ApiRegion, clock: Clock = system_clock, gate: Gate | None = None
    ) -> None:
        self.units = units
        self.region = region
        self.clock = clock
        self.gate = gate

    def _common(self, principal: Principal, thread: str, marketplace_id: str, status: ThreadStatus) -> dict[str, Any]:
        return {
            "account_id": principal.account_id,
            "marketplace_id": marketplace_id,
            "thread_id": thread,
            "region": self.region.value,
            "thread_state": status.state,
            "reply_deadline": status.reply_deadline,
        }

    async def _record(
        self,
        uow: UnitOfWork[MessagesStore],
        principal: Principal,
        head: Thread | ThreadHead,
        entry: StoredEntry,
        make_event: Callable[[ThreadStatus], Event],
        *,
        version: int,
    ) -> Thread:
        """Insert the entry, recompute the thread from its timeline, append its event and save the thread."""
        account = principal.account_id
        await uow.store.insert_entry(account, entry)
        entries = await uow.store.thread_entries(account, entry.thread_id)
        status = thread_status(e.entry() for e in entries)
        await uow.append(stream_id(account, entry.thread_id), version, [make_event(status)], occurred_at=entry.at)
        saved = Thread.of(head, status, entries, version + 1)
        await uow.store.save_thread(account, saved)
        return saved

    async def _lock(self, uow: UnitOfWork[MessagesStore], principal: Principal, thread_id: str) -> None:
        """Commands of one thread queue (they read its entries to recompute it); other threads run side by side."""
        await uow.lock(f"thread:{principal.account_id}:{thread_id}")

    async def receive(self, principal: Principal, msg: BuyerMessage) -> CommandResult:
        """Record a buyer message once per message_id; the thread awaits a reply from its first unanswered one."""
        principal.require("messages")
        check_thread_id(msg.thread_id)
        check_marketplace(msg.marketplace_id, self.region, principal.marketplaces, FIELD)
        check_order_id(msg.amazon_order_id)
        check_text(msg.subject, "subject", SUBJECT_LIMIT, required=False)
        check_text(msg.body, "body", BODY_LIMIT, required=True)
        verdict = await self.gate.verdicts(principal.account_id, {msg.marketplace_id}) if self.gate else {}
        received_at = msg.received_at.astimezone(UTC)
        message_id = msg.message_id or buyer_message_id(msg.thread_id, received_at, msg.subject, msg.body)
        entry = StoredEntry(
            message_id, msg.thread_id, "buyer", received_at, msg.subject, msg.body, msg.amazon_order_id, None
        )
        async with self.units.command() as uow:
            await self._lock(uow, principal, msg.thread_id)
            thread = await uow.store.get_thread(principal.account_id, msg.thread_id, for_update=True)
            earlier = await uow.store.get_entry(principal.account_id, message_id)
            if earlier is not None:
                if earlier == entry and thread is not None:
                    return CommandResult("unchanged", message_id, thread)
                raise _other_content(message_id)
            if thread is None and verdict:
                refusal = participation_refusal(msg.marketplace_id, verdict[msg.marketplace_id], FIELD)
                if refusal is not None:
                    raise refusal
            if thread is not None and thread.marketplace_id != msg.marketplace_id:
                raise Invalid(FIELD, f"thread {msg.thread_id} belongs to marketplace {thread.marketplace_id}")

            def event(status: ThreadStatus) -> Event:
                return BuyerMessageReceived(
                    **self._common(principal, msg.thread_id, msg.marketplace_id, status),
                    message_id=message_id,
                    amazon_order_id=msg.amazon_order_id,
                    received_at=received_at,
                    subject=msg.subject,
                    body=msg.body,
                )

            head = ThreadHead(
                msg.thread_id,
                msg.marketplace_id,
                (thread.amazon_order_id if thread else None) or msg.amazon_order_id,
                thread.subject if thread else msg.subject,
            )
            saved = await self._record(uow, principal, head, entry, event, version=thread.version if thread else 0)
        return CommandResult("received", message_id, saved)

    async def _thread_for_command(self, uow: UnitOfWork[MessagesStore], principal: Principal, thread_id: str) -> Thread:
        check_thread_id(thread_id)
        thread = await uow.store.get_thread(principal.account_id, thread_id, for_update=True)
        if thread is None:
            raise NotFound("thread_id", f"no thread {thread_id}")
        check_marketplace(thread.marketplace_id, self.region, principal.marketplaces, FIELD)
        return thread

    async def reply(self, principal: Principal, cmd: Reply) -> CommandResult:
        """Record a seller reply once per message_id: it answers every buyer message before it."""
        principal.require("messages")
        check_text(cmd.body, "body", BODY_LIMIT, required=True)
        replied_at = (cmd.replied_at or self.clock()).astimezone(UTC)
        message_id = cmd.message_id or reply_message_id(cmd.thread_id, replied_at, cmd.body)
        async with self.units.command() as uow:
            await self._lock(uow, principal, cmd.thread_id)
            thread = await self._thread_for_command(uow, principal, cmd.thread_id)
            entry = StoredEntry(message_id, cmd.thread_id, "reply", replied_at, None, cmd.body, None, principal.user_id)
            earlier = await uow.store.get_entry(principal.account_id, message_id)
            if earlier is not None:
                same = (earlier.thread_id, earlier.kind, earlier.at, earlier.body) == (
                    entry.thread_id,
                    entry.kind,
                    entry.at,
                    entry.body,
                )
                if same:
                    return CommandResult("unchanged", message_id, thread)
                raise _other_content(message_id)
            entries = await uow.store.thread_entries(principal.account_id, cmd.thread_id)
            check_reply(thread_status(e.entry() for e in entries), replied_at)

            def event(status: ThreadStatus) -> Event:
                return SellerReplied(
                    **self._common(principal, cmd.thread_id, thread.marketplace_id, status),
                    message_id=message_id,
                    replied_at=replied_at,
                    body=cmd.body,
                    replied_by=principal.user_id,
                )

            saved = await self._record(uow, principal, thread, entry, event, version=thread.version)
        return CommandResult("replied", message_id, saved)

    async def mark_no_response_needed(self, principal: Principal, thread_id: str, at: datetime | None) -> CommandResult:
        """Close the wait without a reply; the same mark (same time) twice publishes once."""
        principal.require("messages")
        when = (at or self.clock()).astimezone(UTC)
        entry_id = mark_entry_id(thread_id, when)
        async with self.units.command() as uow:
            await self._lock(uow, principal, thread_id)
            thread = await self._thread_for_command(uow, principal, thread_id)
            earlier = await uow.store.get_entry(principal.account_id, entry_id)
            if earlier is not None and earlier.thread_id == thread_id:
                return CommandResult("unchanged", entry_id, thread)
            entries = await uow.store.thread_entries(principal.account_id, thread_id)
            check_mark(thread_status(e.entry() for e in entries), when)
            entry = StoredEntry(entry_id, thread_id, "mark", when, None, None, None, principal.user_id)

            def event(status: ThreadStatus) -> Event:
                return MarkedNoResponseNeeded(
                    **self._common(principal, thread_id, thread.marketplace_id, status),
                    at=when,
                    marked_by=principal.user_id,
                )

            saved = await self._record(uow, principal, thread, entry, event, version=thread.version)
        return CommandResult("marked", entry_id, saved)

    # -- reads ----------------------------------------------------------------------------------------

    async def list_threads(
        self,
        principal: Principal,
        *,
        state: str | None,
        marketplace_id: str | None,
        limit: int | None,
        next_token: str | None,
    ) -> tuple[list[Thread], str | None]:
        """Threads of the caller's marketplaces, by state; keyset-paginated with an opaque next_token."""
        principal.require("messages")
        after_key: tuple[datetime, str] | None = None
        if next_token:
            state, marketplace_id, limit, after_key = decode_token(next_token)
        if state is not None and state not in THREAD_STATES:
            raise Invalid("state", f"state must be one of {', '.join(THREAD_STATES)}")
        size = DEFAULT_PAGE if limit is None else limit
        if not 1 <= size <= MAX_PAGE:
            raise Invalid("limit", f"limit must be 1 to {MAX_PAGE}")
        visible: list[str] | None = None if principal.marketplaces == "*" else sorted(principal.marketplaces)
        if marketplace_id is not None:
            check_marketplace(marketplace_id, self.region, principal.marketplaces, FIELD)
            visible = [marketplace_id]
        async with self.units.query() as store:
            rows = await store.list_threads(principal.account_id, ThreadQuery(state, visible, after_key, size + 1))
        page = rows[:size]
        token = None
        if len(rows) > size:
            token = encode_token(state, marketplace_id, size, (page[-1].sort_at, page[-1].thread_id))
        return page, token

    async def get_thread(self, principal: Principal, thread_id: str) -> tuple[Thread, list[StoredEntry]]:
        principal.require("messages")
        async with self.units.query() as store:
            thread = await store.get_thread(principal.account_id, thread_id)
            if thread is None or not principal.covers(thread.marketplace_id):
                raise NotFound("thread_id", f"no thread {thread_id}")
            return thread, await store.thread_entries(principal.account_id, thread_id)


def encode_token(state: str | None, marketplace_id: str | None, limit: int, key: tuple[datetime, str]) -> str:
    return encode_cursor({"s": state, "m": marketplace_id, "n": limit, "k": key_json(key)})


def _page_of(data: dict[str, Any]) -> tuple[str | None, str | None, int, tuple[datetime, str]]:
    state, marketplace_id = data["s"], data["m"]
    if not (state is None or isinstance(state, str)) or not (marketplace_id is None or isinstance(marketplace_id, str)):
        raise ValueError(data)
    return state, marketplace_id, int(data["n"]), parse_key(data["k"])


def decode_token(token: str) -> tuple[str | None, str | None, int, tuple[datetime, str]]:
    return decode_cursor(token, "next_token", _page_of)
