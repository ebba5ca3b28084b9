"""Ended access, known to every service within seconds (DESIGN section 11).

Identity publishes what ends access on ``identity.accounts.v1``: a session revoked (logout, ``/revoke``, a
reused refresh token or code), a member removed, a member's role, permissions or scope changed. Each service
process reads that topic whole (every partition, no consumer group, so every process sees every event) from a
look-back of one access-token lifetime, keeps the result in a ``RevocationSet``, and the token validator
refuses what it names: a token whose ``sid`` is a revoked session, or a token of a removed or changed user
issued before the change. Older events need not be read: every token they could concern has expired.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from unified_shared.kafka import make_reader
from unified_shared.retry import retry_forever
from unified_shared.topics import IDENTITY_ACCOUNTS

log = logging.getLogger(__name__)

# Access tokens live at most this long (identity refuses a longer lifetime), plus the validators' leeway and a
# margin: the look-back of the reader and how long an entry is kept.
ACCESS_TOKEN_MAX_LIFETIME_S = 600
HORIZON_S = ACCESS_TOKEN_MAX_LIFETIME_S + 60

SESSION_REVOKED = "unifiedseller.identity.SessionRevoked.v1"
MEMBER_REMOVED = "unifiedseller.identity.MemberRemoved.v1"
MEMBER_ROLE_CHANGED = "unifiedseller.identity.MemberRoleChanged.v1"


def _timestamp(value: Any) -> float:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


class RevocationSet:
    """Revoked sessions and per-user cut-offs; entries are dropped once every token they concern expired."""

    def __init__(self, *, horizon_s: float = HORIZON_S, clock: Callable[[], float] = time.time) -> None:
        self.horizon_s = horizon_s
        self._clock = clock
        self._sessions: dict[str, float] = {}  # sid -> when revoked (epoch seconds)
        self._users: dict[str, float] = {}  # user id -> tokens issued before this instant are refused

    def __len__(self) -> int:
        return len(self._sessions) + len(self._users)

    def revoke_session(self, session_id: str, at: float) -> None:
        self._sessions[session_id] = max(at, self._sessions.get(session_id, at))
        self._prune()

    def cut_user(self, user_id: str, at: float) -> None:
        """Refuse the user's tokens issued before ``at`` (they carry a membership that no longer holds)."""
        self._users[user_id] = max(at, self._users.get(user_id, at))
        self._prune()

    def refusal(self, claims: Mapping[str, Any]) -> str | None:
        """Why a token with these (verified) claims is refused, or None if nothing revoked it."""
        sid = claims.get("sid")
        if sid is not None and str(sid) in self._sessions:
            return "the session of this token has ended"
        cut = self._users.get(str(claims.get("sub")))
        # ``iat`` has whole seconds: a token of the change's own second counts as issued before it (identity
        # issues the next tokens of a changed member with the following second as ``iat``).
        if cut is not None and _iat(claims) < math.ceil(cut):
            return "the membership this token was issued for has changed or ended"
        return None

    def apply(self, ce_type: str, payload: Mapping[str, Any]) -> bool:
        """Take in one event of ``identity.accounts.v1``; True if it ended access."""
        if ce_type == SESSION_REVOKED:
            self.revoke_session(str(payload["session_id"]), _timestamp(payload["revoked_at"]))
        elif ce_type == MEMBER_REMOVED:
            self.cut_user(str(payload["user_id"]), _timestamp(payload["removed_at"]))
        elif ce_type == MEMBER_ROLE_CHANGED:
            self.cut_user(str(payload["user_id"]), _timestamp(payload["changed_at"]))
        else:
            return False
        return True

    def _prune(self) -> None:
        oldest = self._clock() - self.horizon_s
        for entries in (self._sessions, self._users):
            for key in [k for k, at in entries.items() if at < oldest]:
                del entries[key]


def _iat(claims: Mapping[str, Any]) -> float:
    try:
        return float(claims.get("iat", 0))
    except (TypeError, ValueError):
        return 0.0


class RevocationReader:
    """Feeds a RevocationSet from every partition of ``identity.accounts.v1``, starting one horizon back.

    ``caught_up`` turns true once the reader has reached the end offsets seen at start: from then on the
    service refuses everything revoked before it started (readiness waits for it)."""

    def __init__(
        self,
        bootstrap_servers: str,
        revocations: RevocationSet,
        *,
        client_id: str,
        topic: str = IDENTITY_ACCOUNTS,
        lookback_s: float = HORIZON_S,
        consumer_factory: Callable[[], AIOKafkaConsumer] | None = None,
    ) -> None:
        self.revocations = revocations
        self.topic = topic
        self.lookback_s = lookback_s
        self._factory = consumer_factory or (lambda: make_reader(bootstrap_servers, client_id=client_id))
        self._consumer: AIOKafkaConsumer | None = None
        self._targets: dict[TopicPartition, int] = {}
        self.caught_up = False
        self.last_error: str | None = None
        self.applied = 0

    async def _open(self) -> AIOKafkaConsumer:
        consumer = self._consumer = self._factory()  # closed by _close() whatever happens next
        try:
            await consumer.start()
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(self.topic) or set()
            if not partitions:
                raise RuntimeError(f"topic {self.topic} has no partitions (not created?)")
            parts = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(parts)
            since_ms = int((time.time() - self.lookback_s) * 1000)
            found = await consumer.offsets_for_times(dict.fromkeys(parts, since_ms))
            ends = await consumer.end_offsets(parts)
            for tp in parts:
                offset = found.get(tp)
                consumer.seek(tp, offset.offset if offset is not None else ends[tp])
            self._targets = {tp: end for tp, end in ends.items() if end > 0}
        except BaseException:
            await self._close()
            raise
        return consumer

    def _take(self, record: ConsumerRecord[Any, Any]) -> None:
        headers = {k: v for k, v in (record.headers or [])}
        raw_type = headers.get("ce_type")
        if raw_type is None or record.value is None:
            return
        try:
            if self.revocations.apply(raw_type.decode(), json.loads(record.value)):
                self.applied += 1
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            log.warning("revocation event skipped at %s/%s: %r", record.partition, record.offset, exc)

    async def _update_caught_up(self, consumer: AIOKafkaConsumer) -> None:
        if self.caught_up:
            return
        for tp, end in list(self._targets.items()):
            if await consumer.position(tp) >= end:
                del self._targets[tp]
        self.caught_up = not self._targets

    async def poll_once(self, timeout_ms: int = 500) -> None:
        consumer = self._consumer if self._consumer is not None else await self._open()
        batch = await consumer.getmany(timeout_ms=timeout_ms)
        for records in batch.values():
            for record in records:
                self._take(record)
        await self._update_caught_up(consumer)

    async def run(self) -> None:
        """Read until cancelled; a failure is reported (readiness detail) and retried with a new consumer."""
        try:
            await retry_forever(self._attempt, self._attempt_failed)
        finally:
            await self._close()

    async def _attempt(self) -> None:
        await self.poll_once()
        self.last_error = None

    async def _attempt_failed(self, exc: Exception) -> None:
        self.last_error = repr(exc)
        log.warning("revocation reader failed; retrying", exc_info=True)
        await self._close()

    async def _close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            with contextlib.suppress(Exception):
                await consumer.stop()

    def status(self) -> str:
        if self.last_error:
            return self.last_error
        return "ok" if self.caught_up else "catching up"
