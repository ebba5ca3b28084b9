"""What ends access is published on identity.accounts.v1 for every other service (DESIGN 11), and identity
itself refuses an ended session's access token at once, on every call, /members included."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema
import jwt

from unified_shared.revocations import RevocationSet
from unified_shared.testing import SeenRecord, TopicWatcher
from unified_shared.topics import IDENTITY_ACCOUNTS

CLI = "unified-seller-cli"
SESSION_REVOKED = "unifiedseller.identity.SessionRevoked.v1"
SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas"
MEMBER_PASSWORD = "another long passphrase 77"


def bearer(token: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def claims(access_token: str) -> dict:
    return jwt.decode(access_token, options={"verify_signature": False})


def revocations_of(seen: list[SeenRecord]) -> list[dict]:
    return [s.value for s in seen if s.headers["ce_type"] == SESSION_REVOKED]


async def test_each_way_a_session_ends_is_published_and_refused_by_identity_at_once(
    service, http, sign_in, kafka_bootstrap
) -> None:
    account_id, user_id, email_addr = await service.register(http)
    members = f"{service.base}/v1/accounts/{account_id}/members"
    async with TopicWatcher(kafka_bootstrap, [IDENTITY_ACCOUNTS]) as watcher:
        # /revoke with the refresh token: the access token of that session is refused at once, /members too.
        client, revoked = await sign_in(email_addr)
        await client.aclose()
        assert (await http.get(members, headers=bearer(revoked))).status_code == 200
        r = await http.post(f"{service.base}/revoke", data={"client_id": CLI, "token": revoked["refresh_token"]})
        assert r.status_code == 200
        r = await http.get(members, headers=bearer(revoked))
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")

        # Reuse of a rotated refresh token.
        client, reused = await sign_in(email_addr)
        await client.aclose()
        assert (await service.refresh(http, reused["refresh_token"])).status_code == 200
        assert (await service.refresh(http, reused["refresh_token"])).status_code == 400
        assert (await http.get(members, headers=bearer(reused))).status_code == 401

        # Logout (end-session with the ID token).
        client, logged_out = await sign_in(email_addr)
        await client.aclose()
        r = await http.get(f"{service.base}/end-session", params={"id_token_hint": logged_out["id_token"]})
        assert r.status_code == 200
        assert (await http.get(members, headers=bearer(logged_out))).status_code == 401

        # A session that did not end keeps working.
        client, live = await sign_in(email_addr)
        await client.aclose()
        assert (await http.get(members, headers=bearer(live))).status_code == 200

        seen = await watcher.collect(lambda s: s.headers["ce_type"] == SESSION_REVOKED, count=3, timeout_s=30)
    events = revocations_of(seen)
    by_session = {e["session_id"]: e for e in events}
    expected = {
        claims(revoked["access_token"])["sid"]: "revoked by client",
        claims(reused["access_token"])["sid"]: "refresh token reused",
        claims(logged_out["access_token"])["sid"]: "signed out",
    }
    assert {sid: by_session[sid]["reason"] for sid in expected} == expected
    assert claims(live["access_token"])["sid"] not in by_session
    schema = json.loads((SCHEMAS / f"{SESSION_REVOKED}.json").read_text())
    for event in events:
        jsonschema.validate(event, schema, cls=jsonschema.Draft202012Validator)
        assert event["account_id"] == account_id and event["user_id"] == user_id
    # What every other service does with them: the tokens of those sessions are refused, the live one is not.
    revocations = RevocationSet()
    for record in seen:
        revocations.apply(record.headers["ce_type"], record.value)
    for token in (revoked, reused, logged_out):
        assert revocations.refusal(claims(token["access_token"])) is not None
    assert revocations.refusal(claims(live["access_token"])) is None


async def test_a_changed_members_old_token_is_refused_elsewhere_and_the_next_one_is_not(
    service, http, sign_in, kafka_bootstrap
) -> None:
    account_id, _, _, owner = await sign_in.new_owner(http)
    member_email = f"member-{uuid.uuid4().hex[:8]}@example.com"
    r = await http.post(
        f"{service.base}/v1/accounts/{account_id}/invitations",
        json={"email": member_email, "role": "member", "permissions": ["orders"], "marketplaces": ["DE"]},
        headers=bearer(owner),
    )
    assert r.status_code == 201, r.text
    invitation = parse_qs(urlsplit(service.sink.link_to(member_email)).query)["token"][0]
    r = await http.post(
        f"{service.base}/v1/invitations/accept", json={"token": invitation, "password": MEMBER_PASSWORD}
    )
    member_id = r.json()["user_id"]
    client, member = await sign_in(member_email, MEMBER_PASSWORD)
    await client.aclose()
    async with TopicWatcher(kafka_bootstrap, [IDENTITY_ACCOUNTS]) as watcher:
        r = await http.patch(
            f"{service.base}/v1/accounts/{account_id}/members/{member_id}",
            json={"marketplaces": ["DE", "FR"]},
            headers=bearer(owner),
        )
        assert r.status_code == 200, r.text
        # Refreshed at once, in the same second as the change: the new token must not look older than it.
        refreshed = await service.refresh(http, member["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        seen = await watcher.collect(lambda s: s.headers["ce_type"].endswith("MemberRoleChanged.v1"), count=1)
    revocations = RevocationSet()
    for record in seen:
        revocations.apply(record.headers["ce_type"], record.value)
    assert revocations.refusal(claims(member["access_token"])) is not None
    assert revocations.refusal(claims(refreshed.json()["access_token"])) is None
