"""Thread commands (buyer message, seller reply, "no response needed") and the thread reads.

Each command is one transaction: it takes the event store's append lock first (commands of this database
queue instead of deadlocking), records the entry, recomputes the thread from its whole timeline, appends
the event and saves the thread. Repeating a command with the same ID changes and publishes nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from unified_messages import store
from unified_messages.domain import (
    BODY_LIMIT,
    SUBJECT_LIMIT,
    THREAD_STATES,
    InvalidInput,
    ThreadStatus,
    buyer_message_id,
    check_mark,
    check_marketplace,
    check_order_id,
    check_reply,
    check_thread_id,
    mark_entry_id,
    reply_message_id,
    thread_status,
)
from unified_shared import eventstore
from unified_shared.auth import Principal
from unified_shared.bounds import check_line, check_query_instant, cursor_json
from unified_shared.catalog import ApiRegion, by_id
from unified_shared.contracts.messages import BuyerMessageReceived, MarkedNoResponseNeeded, SellerReplied
from unified_shared.events import Event
from unified_shared.participations import Gate, Verdict
from unified_shared.problems import Problem
from unified_shared.runtime import ServiceRuntime

Clock = Callable[[], datetime]
MAX_PAGE = 100
DEFAULT_PAGE = 50


def utc_now() -> datetime:
    return datetime.now(UTC)


RETRY_AFTER_S = 1


def refuse_unopened(marketplace_id: str, verdict: tuple[Verdict, str]) -> None:
    """A new thread needs the marketplace opened: 422 naming it, or 503 + Retry-After while not learned yet."""
    kind, why = verdict
    if kind == "open":
        return
    code = by_id(marketplace_id).code
    if kind == "not-open":
        raise Problem(
            422,
            "Invalid request",
            f"the account has not opened marketplace {code} ({marketplace_id}): {why}",
            field="marketplace_id",
            marketplace_id=marketplace_id,
        )
    problem = Problem(
        503,
        "Not known yet",
        f"marketplace {code} ({marketplace_id}) is not known to be open for this account yet (a fresh opening"
        f" takes a moment to arrive): retry after {RETRY_AFTER_S} s",
        field="marketplace_id",
        marketplace_id=marketplace_id,
    )
    problem.headers["Retry-After"] = str(RETRY_AFTER_S)
    raise problem


def problem_of(exc: InvalidInput, **extra: Any) -> Problem:
    return Problem(exc.status, exc.title, exc.detail, field=exc.field, **exc.extra, **extra)


def check_text(value: str, field: str, limit: int, *, required: bool) -> None:
    """Plain text of at most ``limit`` characters; never parsed, only stored and returned as it came."""
    if required and not value.strip():
        raise InvalidInput(field, f"{field} must not be empty")
    if len(value) > limit:
        raise InvalidInput(field, f"{field} is {len(value)} characters long; the limit is {limit}", limit=limit)


@dataclass(frozen=True, slots=True)
class BuyerMessage:
    thread_id: str
    marketplace_id: str
    subject: str
    body: str
    received_at: datetime
    message_id: str | None = None
    amazon_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    thread_id: str
    body: str
    replied_at: datetime | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class CommandResult:
    outcome: str  # received | replied | marked | unchanged
    entry_id: str
    thread: store.Thread


class MessagesHandlers:
    def __init__(
        self, runtime: ServiceRuntime, region: ApiRegion, clock: Clock = utc_now, gate: Gate | None = None
    ) -> None:
        self.gate = gate
        self.runtime = runtime
        self.region = region
        self.clock = clock

    async def _lock(self, conn: asyncpg.Connection, principal: Principal, thread_id: str) -> None:
        """Commands of one thread queue (they read its entries to recompute it); other threads run side by
        side, and the event store's append lock is taken only by the append itself."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"thread:{principal.account_id}:{thread_id}"
        )

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
        conn: asyncpg.Connection,
        principal: Principal,
        thread: store.Thread | None,
        entry: store.StoredEntry,
        make_event: Callable[[ThreadStatus], Event],
        *,
        marketplace_id: str,
        subject: str,
        amazon_order_id: str | None,
    ) -> store.Thread:
        """Insert the entry, recompute the thread, append its event and save the thread."""
        await store.insert_entry(conn, principal.account_id, entry)
        entries = await store.thread_entries(conn, principal.account_id, entry.thread_id)
        status = thread_status(e.entry() for e in entries)
        version = thread.version if thread else 0
        stream = store.stream_id(principal.account_id, entry.thread_id)
        await eventstore.append(conn, stream, version, [make_event(status)], occurred_at=entry.at)
        await store.save_thread(
            conn,
            principal.account_id,
            thread_id=entry.thread_id,
            marketplace_id=marketplace_id,
            amazon_order_id=amazon_order_id,
            subject=subject,
            status=status,
            buyer_messages=sum(1 for e in entries if e.kind == "buyer"),
            replies=sum(1 for e in entries if e.kind == "reply"),
            version=version + 1,
        )
        saved = await store.get_thread(conn, principal.account_id, entry.thread_id)
        assert saved is not None
        return saved

    async def receive(self, principal: Principal, msg: BuyerMessage) -> CommandResult:
        """Record a buyer message once per message_id; the thread awaits a reply from its first unanswered one."""
        principal.require("messages")
        try:
            check_thread_id(msg.thread_id)
            check_marketplace(msg.marketplace_id, self.region, principal.marketplaces)
            check_order_id(msg.amazon_order_id)
            check_text(msg.subject, "subject", SUBJECT_LIMIT, required=False)
            check_text(msg.body, "body", BODY_LIMIT, required=True)
        except InvalidInput as exc:
            raise problem_of(exc) from None
        verdict = await self.gate.verdicts(principal.account_id, {msg.marketplace_id}) if self.gate else {}
        received_at = msg.received_at.astimezone(UTC)
        message_id = msg.message_id or buyer_message_id(msg.thread_id, received_at, msg.subject, msg.body)
        entry = store.StoredEntry(
            message_id, msg.thread_id, "buyer", received_at, msg.subject, msg.body, msg.amazon_order_id, None
        )
        async with self.runtime.pool.acquire() as conn, conn.transaction():
            await self._lock(conn, principal, msg.thread_id)
            thread = await store.get_thread(conn, principal.account_id, msg.thread_id, for_update=True)
            earlier = await store.get_entry(conn, principal.account_id, message_id)
            if earlier is not None:
                if earlier == entry and thread is not None:
                    return CommandResult("unchanged", message_id, thread)
                raise Problem(
                    409, "Conflict", f"message {message_id} was recorded with other content", field="message_id"
                )
            if thread is None and verdict:
                refuse_unopened(msg.marketplace_id, verdict[msg.marketplace_id])
            if thread is not None and thread.marketplace_id != msg.marketplace_id:
                raise Problem(
                    422,
                    "Invalid request",
                    f"thread {msg.thread_id} belongs to marketplace {thread.marketplace_id}",
                    field="marketplace_id",
                )

            def event(status: ThreadStatus) -> Event:
                return BuyerMessageReceived(
                    **self._common(principal, msg.thread_id, msg.marketplace_id, status),
                    message_id=message_id,
                    amazon_order_id=msg.amazon_order_id,
                    received_at=received_at,
                    subject=msg.subject,
                    body=msg.body,
                )

            saved = await self._record(
                conn,
                principal,
                thread,
                entry,
                event,
                marketplace_id=msg.marketplace_id,
                subject=thread.subject if thread else msg.subject,
                amazon_order_id=(thread.amazon_order_id if thread else None) or msg.amazon_order_id,
            )
        self.runtime.notify_relay()
        return CommandResult("received", message_id, saved)

    async def _thread_for_command(self, conn: asyncpg.Connection, principal: Principal, thread_id: str) -> store.Thread:
        try:
            check_thread_id(thread_id)
        except InvalidInput as exc:
            raise problem_of(exc) from None
        thread = await store.get_thread(conn, principal.account_id, thread_id, for_update=True)
        if thread is None:
            raise Problem(404, "Not found", f"no thread {thread_id}", field="thread_id")
        try:
            check_marketplace(thread.marketplace_id, self.region, principal.marketplaces)
        except InvalidInput as exc:
            raise problem_of(exc) from None
        return thread

    async def reply(self, principal: Principal, cmd: Reply) -> CommandResult:
        """Record a seller reply once per message_id: it answers every buyer message before it."""
        principal.require("messages")
        try:
            check_text(cmd.body, "body", BODY_LIMIT, required=True)
        except InvalidInput as exc:
            raise problem_of(exc) from None
        replied_at = (cmd.replied_at or self.clock()).astimezone(UTC)
        message_id = cmd.message_id or reply_message_id(cmd.thread_id, replied_at, cmd.body)
        async with self.runtime.pool.acquire() as conn, conn.transaction():
            await self._lock(conn, principal, cmd.thread_id)
            thread = await self._thread_for_command(conn, principal, cmd.thread_id)
            entry = store.StoredEntry(
                message_id, cmd.thread_id, "reply", replied_at, None, cmd.body, None, principal.user_id
            )
            earlier = await store.get_entry(conn, principal.account_id, message_id)
            if earlier is not None:
                same = (earlier.thread_id, earlier.kind, earlier.at, earlier.body) == (
                    entry.thread_id,
                    entry.kind,
                    entry.at,
                    entry.body,
                )
                if same:
                    return CommandResult("unchanged", message_id, thread)
                raise Problem(
                    409, "Conflict", f"message {message_id} was recorded with other content", field="message_id"
                )
            entries = await store.thread_entries(conn, principal.account_id, cmd.thread_id)
            try:
                check_reply(thread_status(e.entry() for e in entries), replied_at)
            except InvalidInput as exc:
                raise problem_of(exc) from None

            def event(status: ThreadStatus) -> Event:
                return SellerReplied(
                    **self._common(principal, cmd.thread_id, thread.marketplace_id, status),
                    message_id=message_id,
                    replied_at=replied_at,
                    body=cmd.body,
                    replied_by=principal.user_id,
                )

            saved = await self._record(
                conn,
                principal,
                thread,
                entry,
                event,
                marketplace_id=thread.marketplace_id,
                subject=thread.subject,
                amazon_order_id=thread.amazon_order_id,
            )
        self.runtime.notify_relay()
        return CommandResult("replied", message_id, saved)

    async def mark_no_response_needed(self, principal: Principal, thread_id: str, at: datetime | None) -> CommandResult:
        """Close the wait without a reply; the same mark (same time) twice publishes once."""
        principal.require("messages")
        when = (at or self.clock()).astimezone(UTC)
        entry_id = mark_entry_id(thread_id, when)
        async with self.runtime.pool.acquire() as conn, conn.transaction():
            await self._lock(conn, principal, thread_id)
            thread = await self._thread_for_command(conn, principal, thread_id)
            earlier = await store.get_entry(conn, principal.account_id, entry_id)
            if earlier is not None and earlier.thread_id == thread_id:
                return CommandResult("unchanged", entry_id, thread)
            entries = await store.thread_entries(conn, principal.account_id, thread_id)
            try:
                check_mark(thread_status(e.entry() for e in entries), when)
            except InvalidInput as exc:
                raise problem_of(exc) from None
            entry = store.StoredEntry(entry_id, thread_id, "mark", when, None, None, None, principal.user_id)

            def event(status: ThreadStatus) -> Event:
                return MarkedNoResponseNeeded(
                    **self._common(principal, thread_id, thread.marketplace_id, status),
                    at=when,
                    marked_by=principal.user_id,
                )

            saved = await self._record(
                conn,
                principal,
                thread,
                entry,
                event,
                marketplace_id=thread.marketplace_id,
                subject=thread.subject,
                amazon_order_id=thread.amazon_order_id,
            )
        self.runtime.notify_relay()
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
    ) -> tuple[list[store.Thread], str | None]:
        """Threads of the caller's marketplaces, by state; keyset-paginated with an opaque next_token."""
        principal.require("messages")
        after_key: tuple[datetime, str] | None = None
        if next_token:
            state, marketplace_id, limit, after_key = decode_token(next_token)
        if state is not None and state not in THREAD_STATES:
            raise Problem(422, "Invalid request", f"state must be one of {', '.join(THREAD_STATES)}", field="state")
        size = DEFAULT_PAGE if limit is None else limit
        if not 1 <= size <= MAX_PAGE:
            raise Problem(422, "Invalid request", f"limit must be 1 to {MAX_PAGE}", field="limit")
        visible: list[str] | None = None if principal.marketplaces == "*" else sorted(principal.marketplaces)
        if marketplace_id is not None:
            try:
                check_marketplace(marketplace_id, self.region, principal.marketplaces)
            except InvalidInput as exc:
                raise problem_of(exc) from None
            visible = [marketplace_id]
        async with self.runtime.pool.acquire() as conn:
            rows = await store.list_threads(
                conn, principal.account_id, state=state, marketplace_ids=visible, after_key=after_key, limit=size + 1
            )
        page = rows[:size]
        token = None
        if len(rows) > size:
            token = encode_token(state, marketplace_id, size, (page[-1].sort_at, page[-1].thread_id))
        return page, token

    async def get_thread(self, principal: Principal, thread_id: str) -> tuple[store.Thread, list[store.StoredEntry]]:
        principal.require("messages")
        async with self.runtime.pool.acquire() as conn:
            thread = await store.get_thread(conn, principal.account_id, thread_id)
            if thread is None or not principal.covers(thread.marketplace_id):
                raise Problem(404, "Not found", f"no thread {thread_id}", field="thread_id")
            return thread, await store.thread_entries(conn, principal.account_id, thread_id)


def encode_token(state: str | None, marketplace_id: str | None, limit: int, key: tuple[datetime, str]) -> str:
    data = {"s": state, "m": marketplace_id, "n": limit, "k": [key[0].isoformat(), key[1]]}
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[str | None, str | None, int, tuple[datetime, str]]:
    try:
        data = cursor_json(token)  # refuses NaN/Infinity, which int() cannot take
        state, marketplace_id = data["s"], data["m"]
        if not (state is None or isinstance(state, str)) or not (
            marketplace_id is None or isinstance(marketplace_id, str)
        ):
            raise ValueError(data)
        at = check_query_instant(datetime.fromisoformat(data["k"][0]))
        return state, marketplace_id, int(data["n"]), (at, check_line(str(data["k"][1])))
    except (ValueError, KeyError, TypeError, IndexError, OverflowError):
        raise Problem(422, "Invalid request", "next_token is not valid", field="next_token") from None


def parse_as_of(value: str | None, clock: Clock) -> datetime:
    if value is None:
        return clock()
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise Problem(422, "Invalid request", "as_of must be an ISO 8601 date-time with a UTC offset", field="as_of")
    return parsed.astimezone(UTC)
