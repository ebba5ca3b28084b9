"""The revocation set every service keeps (unified_shared.revocations): its rules, and its reader against the
real broker (every partition, no group, a bounded look-back), wired into the token validator."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from unified_shared.auth import JwksCache, TokenValidator
from unified_shared.contracts.identity import MemberRemoved, SessionRevoked
from unified_shared.envelope import Envelope
from unified_shared.events import Event
from unified_shared.kafka import make_producer
from unified_shared.problems import Problem
from unified_shared.revocations import MEMBER_ROLE_CHANGED, RevocationReader, RevocationSet
from unified_shared.testing import TestIssuer
from unified_shared.topics import TopicSpec, create_topics


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def test_a_revoked_session_refuses_only_its_tokens() -> None:
    revoked = RevocationSet()
    revoked.revoke_session("s-1", time.time())
    assert revoked.refusal({"sid": "s-1", "sub": "u", "iat": 1}) is not None
    assert revoked.refusal({"sid": "s-2", "sub": "u", "iat": 1}) is None


def test_a_user_cut_refuses_tokens_issued_before_it_and_in_its_second() -> None:
    revoked = RevocationSet()
    cut = 1_900_000_000.4
    revoked.cut_user("u-1", cut)
    assert revoked.refusal({"sid": "s", "sub": "u-1", "iat": 1_899_999_999}) is not None
    assert revoked.refusal({"sid": "s", "sub": "u-1", "iat": 1_900_000_000}) is not None  # same second
    assert revoked.refusal({"sid": "s", "sub": "u-1", "iat": 1_900_000_001}) is None  # issued after the change
    assert revoked.refusal({"sid": "s", "sub": "u-2", "iat": 1_899_999_999}) is None


def test_entries_are_dropped_once_every_token_they_concern_expired() -> None:
    now = [1_000_000.0]
    revoked = RevocationSet(horizon_s=660, clock=lambda: now[0])
    revoked.revoke_session("old", now[0])
    now[0] += 661
    revoked.revoke_session("new", now[0])
    assert len(revoked) == 1
    assert revoked.refusal({"sid": "new"}) is not None


def test_events_that_end_access_are_applied_and_others_ignored() -> None:
    revoked = RevocationSet()
    now = time.time()
    assert revoked.apply(MEMBER_ROLE_CHANGED, {"user_id": "u-1", "changed_at": iso(now)})
    assert not revoked.apply("unifiedseller.identity.UserInvited.v1", {"email": "x@example.com"})
    assert revoked.refusal({"sid": "s", "sub": "u-1", "iat": int(now) - 10}) is not None


async def _publish(producer: AIOKafkaProducer, topic: str, event: Event, *, timestamp_ms: int | None = None) -> None:
    envelope = Envelope(
        id=uuid.uuid4(),
        source="/services/identity",
        type=event.ce_type(),
        time=datetime.now(UTC),
        subject=event.partition_key(),
        partitionkey=event.partition_key(),
    )
    await producer.send_and_wait(
        topic,
        event.to_json_bytes(),
        key=event.partition_key().encode(),
        headers=envelope.to_headers(),
        timestamp_ms=timestamp_ms,
    )


async def test_the_reader_feeds_the_validator_from_every_partition_within_its_look_back(kafka_bootstrap: str) -> None:
    topic = f"test.revocations.{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, [TopicSpec(topic, 3)])
    issuer = TestIssuer()
    account, user, removed_user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    old_sid, new_sid = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    producer = make_producer(kafka_bootstrap, client_id="test-revocations")  # the broker login from the environment
    await producer.start()
    try:
        # Revoked long before the look-back: every token of that session has expired, the reader skips it.
        await _publish(
            producer,
            topic,
            SessionRevoked(account_id=account, user_id=user, session_id=old_sid, reason="signed out", revoked_at=now),
            timestamp_ms=int((time.time() - 3600) * 1000),
        )
        await _publish(
            producer,
            topic,
            SessionRevoked(account_id=account, user_id=user, session_id=new_sid, reason="signed out", revoked_at=now),
        )
        revocations = RevocationSet()
        reader = RevocationReader(kafka_bootstrap, revocations, client_id="test-revocations", topic=topic)
        task = asyncio.create_task(reader.run())
        try:
            deadline = time.monotonic() + 30
            while not reader.caught_up:
                assert time.monotonic() < deadline, reader.status()
                await asyncio.sleep(0.05)
            validator = TokenValidator(
                JwksCache(_jwks(issuer)), issuer=issuer.issuer, audience=issuer.audience, revocations=revocations
            )
            # Caught up: the recent revocation is known, the one beyond the look-back is not.
            await _refused(validator, issuer.mint(account_id=account, user_id=user, sid=str(new_sid)))
            await validator.validate(issuer.mint(account_id=account, user_id=user, sid=str(old_sid)))
            # Published while the reader runs, on whatever partition its key lands: refused soon after.
            token = issuer.mint(account_id=uuid.uuid4(), user_id=removed_user, iat=int(time.time()) - 5)
            await validator.validate(token)
            other_account = uuid.uuid4()
            await _publish(
                producer,
                topic,
                MemberRemoved(
                    account_id=other_account,
                    user_id=removed_user,
                    removed_by=uuid.uuid4(),
                    removed_at=datetime.now(UTC),
                ),
            )
            while True:
                try:
                    await validator.validate(token)
                except Problem as exc:
                    assert exc.status == 401 and "ended" in exc.detail
                    break
                assert time.monotonic() < deadline, "the removal never reached the validator"
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await producer.stop()


def _jwks(issuer: TestIssuer) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def fetch() -> dict[str, Any]:
        return issuer.jwks()

    return fetch


async def _refused(validator: TokenValidator, token: str) -> None:
    try:
        await validator.validate(token)
    except Problem as exc:
        assert exc.status == 401, exc.detail
        assert exc.headers["WWW-Authenticate"].startswith("Bearer")
        return
    raise AssertionError("a token of a revoked session was accepted")


def test_payloads_the_set_reads_match_the_contracts() -> None:
    event = SessionRevoked(
        account_id=uuid.uuid4(), user_id=uuid.uuid4(), session_id=uuid.uuid4(), reason="x", revoked_at=datetime.now(UTC)
    )
    revoked = RevocationSet()
    assert revoked.apply(event.ce_type(), json.loads(event.to_json_bytes()))
    assert revoked.refusal({"sid": str(event.session_id)}) is not None
