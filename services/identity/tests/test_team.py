"""Team members: invitations delivered over SMTP to the sink, accepted once, revoked or expired ones refused,
roles and scopes in tokens, and every step published on Kafka as a CloudEvent matching its JSON Schema."""

from __future__ import annotations

import json
import re
import socket
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import jsonschema
import jwt

from unified_shared.envelope import Envelope
from unified_shared.testing import TopicWatcher
from unified_shared.topics import IDENTITY_ACCOUNTS

STRONG_PASSWORD = "correct horse battery staple 42"
MEMBER_PASSWORD = "a different long passphrase 7"
DE, FR = "A1PA6795UKMFR9", "A13V1IB3VIYZZH"
SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas"


def bearer(token: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def claims(token: dict) -> dict:
    return jwt.decode(token["access_token"], options={"verify_signature": False})


async def owner_session(service, http, sign_in, name: str = "Acme GmbH") -> tuple[str, str, dict]:
    account_id, user_id, _, token = await sign_in.new_owner(http, name=name)
    return account_id, user_id, token


async def invite(service, http, token: dict, account_id: str, **body) -> tuple[int, dict]:
    r = await http.post(f"{service.base}/v1/accounts/{account_id}/invitations", json=body, headers=bearer(token))
    return r.status_code, r.json()


def new_email(prefix: str = "member") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def test_invitation_mail_is_delivered_and_its_link_works_once(service, http, sign_in) -> None:
    account_id, _, owner = await owner_session(service, http, sign_in, name="Müller Handels GmbH")
    member_email = new_email()
    status, body = await invite(
        service,
        http,
        owner,
        account_id,
        email=member_email,
        role="member",
        permissions=["orders", "messages"],
        marketplaces=["DE", "FR"],
    )
    assert status == 201, body
    assert {"invitation_id", "expires_at"} <= body.keys()

    # The mail really went through SMTP into the sink folder; its link carries the token.
    link = service.sink.link_to(member_email)
    assert link.startswith(f"{service.settings.issuer}/invitations/accept?token=")
    raw = b"".join(p.read_bytes() for p in service.sink.directory.glob("*.eml"))
    assert link.encode() in raw  # readable as is in the .eml file, not split by quoted-printable
    assert "Müller Handels GmbH" in service.sink.wait_for_mail_to(member_email)["Subject"]
    token_value = parse_qs(urlsplit(link).query)["token"][0]
    conn = await service.db()
    try:
        stored = await conn.fetchval("SELECT token_hash FROM invitations WHERE email = $1", member_email)
        in_db = await conn.fetchval(
            "SELECT count(*) FROM invitations WHERE position($1::bytea in token_hash) > 0", token_value.encode()
        )
    finally:
        await conn.close()
    assert stored is not None and in_db == 0  # only the hash is stored

    page = await http.get(link)
    assert page.status_code == 200 and 'name="password"' in page.text
    accepted = await http.post(
        f"{service.base}/invitations/accept", data={"token": token_value, "password": MEMBER_PASSWORD}
    )
    assert accepted.status_code == 201, accepted.text
    again = await http.post(
        f"{service.base}/v1/invitations/accept", json={"token": token_value, "password": MEMBER_PASSWORD}
    )
    assert again.status_code == 410 and again.headers["content-type"].startswith("application/problem+json")

    # The member signs in; the token says exactly DE and FR, the role and the granted permissions.
    client, member = await sign_in(member_email, MEMBER_PASSWORD)
    await client.aclose()
    c = claims(member)
    assert c["account_id"] == account_id and c["role"] == "member"
    assert sorted(c["marketplaces"]) == sorted([DE, FR])
    assert sorted(c["permissions"]) == ["messages", "orders"]

    members = await http.get(f"{service.base}/v1/accounts/{account_id}/members", headers=bearer(owner))
    assert members.status_code == 200
    roles = {m["email"]: m["role"] for m in members.json()["members"]}
    assert roles[member_email] == "member" and list(roles.values()).count("owner") == 1


async def test_revoked_expired_and_unknown_invitations_do_not_work(service, http, sign_in) -> None:
    account_id, _, owner = await owner_session(service, http, sign_in)
    revoked_email, expired_email = new_email("revoked"), new_email("expired")
    status, revoked = await invite(
        service, http, owner, account_id, email=revoked_email, role="member", permissions=["reports"]
    )
    assert status == 201
    status, _ = await invite(service, http, owner, account_id, email=expired_email, role="admin", permissions=[])
    assert status == 201

    r = await http.delete(
        f"{service.base}/v1/accounts/{account_id}/invitations/{revoked['invitation_id']}", headers=bearer(owner)
    )
    assert r.status_code == 204
    token_revoked = parse_qs(urlsplit(service.sink.link_to(revoked_email)).query)["token"][0]
    r = await http.post(
        f"{service.base}/v1/invitations/accept", json={"token": token_revoked, "password": MEMBER_PASSWORD}
    )
    assert r.status_code == 410, r.text

    conn = await service.db()
    try:  # seven days pass
        await conn.execute(
            "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE email = $1", expired_email
        )
    finally:
        await conn.close()
    token_expired = parse_qs(urlsplit(service.sink.link_to(expired_email)).query)["token"][0]
    r = await http.post(
        f"{service.base}/v1/invitations/accept", json={"token": token_expired, "password": MEMBER_PASSWORD}
    )
    assert r.status_code == 410, r.text

    r = await http.post(f"{service.base}/v1/invitations/accept", json={"token": "x" * 43, "password": MEMBER_PASSWORD})
    assert r.status_code == 404
    # Neither became a member.
    members = (await http.get(f"{service.base}/v1/accounts/{account_id}/members", headers=bearer(owner))).json()
    assert {m["email"] for m in members["members"]}.isdisjoint({revoked_email, expired_email})


async def _join(service, http, sign_in, owner: dict, account_id: str, role: str, **extra) -> tuple[str, str, dict]:
    email_addr = new_email(role)
    status, body = await invite(service, http, owner, account_id, email=email_addr, role=role, **extra)
    assert status == 201, body
    token_value = parse_qs(urlsplit(service.sink.link_to(email_addr)).query)["token"][0]
    r = await http.post(
        f"{service.base}/v1/invitations/accept", json={"token": token_value, "password": MEMBER_PASSWORD}
    )
    assert r.status_code == 201, r.text
    client, token = await sign_in(email_addr, MEMBER_PASSWORD)
    await client.aclose()
    return r.json()["user_id"], email_addr, token


async def test_roles_owner_admin_member(service, http, sign_in) -> None:
    account_id, owner_id, owner = await owner_session(service, http, sign_in)
    admin_id, _, admin = await _join(
        service, http, sign_in, owner, account_id, "admin", permissions=["orders", "reports"]
    )
    member_id, member_email, member = await _join(
        service, http, sign_in, owner, account_id, "member", permissions=["orders"], marketplaces=["DE"]
    )
    base = f"{service.base}/v1/accounts/{account_id}"

    # A member manages nobody; nobody grants billing; the owner role is not for invitations.
    status, body = await invite(service, http, member, account_id, email=new_email(), role="member", permissions=[])
    assert status == 403, body
    status, _ = await invite(
        service, http, admin, account_id, email=new_email(), role="member", permissions=["billing"]
    )
    assert status == 403
    status, _ = await invite(service, http, admin, account_id, email=new_email(), role="owner", permissions=[])
    assert status == 422

    # The owner cannot be demoted or removed, not even by an admin.
    r = await http.patch(f"{base}/members/{owner_id}", json={"role": "member"}, headers=bearer(admin))
    assert r.status_code == 403
    r = await http.delete(f"{base}/members/{owner_id}", headers=bearer(admin))
    assert r.status_code == 403
    r = await http.delete(f"{base}/members/{owner_id}", headers=bearer(owner))
    assert r.status_code == 403

    # An admin changes a member's scope; the member's next token carries it.
    r = await http.patch(
        f"{base}/members/{member_id}",
        json={"permissions": ["orders", "reports"], "marketplaces": ["FR", "IT"]},
        headers=bearer(admin),
    )
    assert r.status_code == 200, r.text
    refreshed = await service.refresh(http, member["refresh_token"])
    assert refreshed.status_code == 200
    c = claims(refreshed.json())
    assert sorted(c["marketplaces"]) == sorted([FR, "APJ6JRA9NG5V4"]) and c["permissions"] == ["orders", "reports"]

    # Another account's owner sees nothing of this one.
    _, _, other_owner = await owner_session(service, http, sign_in)
    r = await http.get(f"{base}/members", headers=bearer(other_owner))
    assert r.status_code == 404
    r = await http.get(f"{base}/members", headers=bearer(member))
    assert r.status_code == 403

    # Removing a member ends their sessions and their sign-in.
    r = await http.delete(f"{base}/members/{member_id}", headers=bearer(admin))
    assert r.status_code == 204
    r = await service.refresh(http, refreshed.json()["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    client = sign_in.client()
    final, _, _, _ = await sign_in.authorize(client, member_email, MEMBER_PASSWORD)
    await client.aclose()
    assert final.status_code == 401
    members = (await http.get(f"{base}/members", headers=bearer(owner))).json()["members"]
    assert {m["user_id"] for m in members} == {owner_id, admin_id}


def assert_refused(r: httpx.Response, *words: str) -> None:
    """403 with a problem body whose detail says why."""
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 403 and all(w in body["detail"] for w in words), body


async def test_an_admin_cannot_widen_its_own_grant_or_touch_other_admins(service, http, sign_in) -> None:
    """The escalation paths a review found: an admin scoped to {DE} with only `reports` PATCHing itself to
    "*", inviting wider than itself, and demoting or removing other admins. Each is refused and changes
    nothing; the owner may still do all of it to others, but not to itself."""
    account_id, owner_id, owner = await owner_session(service, http, sign_in)
    base = f"{service.base}/v1/accounts/{account_id}"
    admin_id, _, admin = await _join(
        service, http, sign_in, owner, account_id, "admin", permissions=["reports"], marketplaces=["DE"]
    )
    other_admin_id, _, _ = await _join(service, http, sign_in, owner, account_id, "admin", permissions=["orders"])
    member_id, _, _ = await _join(
        service, http, sign_in, owner, account_id, "member", permissions=["reports"], marketplaces=["DE"]
    )

    async def team() -> dict[str, tuple[str, list[str], object]]:
        r = await http.get(f"{base}/members", headers=bearer(owner))
        assert r.status_code == 200
        return {m["user_id"]: (m["role"], m["permissions"], m["marketplaces"]) for m in r.json()["members"]}

    before = await team()
    assert before[admin_id] == ("admin", ["reports"], [DE])

    # Its own grant: not wider, not narrower, not another role.
    r = await http.patch(
        f"{base}/members/{admin_id}",
        json={"marketplaces": "*", "permissions": ["orders", "messages", "reports"]},
        headers=bearer(admin),
    )
    assert_refused(r, "their own")
    r = await http.patch(f"{base}/members/{admin_id}", json={"role": "member"}, headers=bearer(admin))
    assert_refused(r, "their own")
    r = await http.delete(f"{base}/members/{admin_id}", headers=bearer(admin))
    assert_refused(r, "themselves")

    # Invitations wider than itself, or of admins.
    wide = {"role": "member", "permissions": ["reports"]}
    for body, why in (
        ({**wide, "marketplaces": "*"}, '"*"'),
        ({**wide, "marketplaces": ["DE", "FR"]}, "FR"),
        ({**wide, "permissions": ["reports", "orders"], "marketplaces": ["DE"]}, "orders"),
        ({"role": "admin", "permissions": [], "marketplaces": ["DE"]}, "owner"),
    ):
        email_addr = new_email("wide")
        r = await http.post(f"{base}/invitations", json={"email": email_addr, **body}, headers=bearer(admin))
        assert_refused(r, why)
        assert not [m for m in service.sink.mails() if m["To"] == email_addr]
    # Within its own grant it still invites.
    status, _ = await invite(service, http, admin, account_id, email=new_email(), marketplaces=["DE"], **wide)
    assert status == 201

    # Other admins and the owner are out of reach; a member cannot be promoted or widened past the admin.
    r = await http.patch(f"{base}/members/{other_admin_id}", json={"role": "member"}, headers=bearer(admin))
    assert_refused(r, "only the owner")
    r = await http.patch(f"{base}/members/{other_admin_id}", json={"permissions": []}, headers=bearer(admin))
    assert_refused(r, "only the owner")
    r = await http.delete(f"{base}/members/{other_admin_id}", headers=bearer(admin))
    assert_refused(r, "only the owner")
    r = await http.patch(f"{base}/members/{member_id}", json={"role": "admin"}, headers=bearer(admin))
    assert_refused(r, "only the owner")
    r = await http.patch(f"{base}/members/{member_id}", json={"marketplaces": "*"}, headers=bearer(admin))
    assert_refused(r, '"*"')
    status, pending = await invite(
        service, http, owner, account_id, email=new_email(), role="admin", permissions=[], marketplaces=["DE"]
    )
    assert status == 201
    r = await http.delete(f"{base}/invitations/{pending['invitation_id']}", headers=bearer(admin))
    assert_refused(r, "only the owner")
    assert await team() == before

    # The admin's next token still says {DE} and reports.
    refreshed = await service.refresh(http, admin["refresh_token"])
    assert refreshed.status_code == 200
    c = claims(refreshed.json())
    assert c["role"] == "admin" and c["marketplaces"] == [DE] and c["permissions"] == ["reports"]

    # The owner manages everyone else, but not itself.
    r = await http.patch(f"{base}/members/{owner_id}", json={"permissions": ["orders"]}, headers=bearer(owner))
    assert_refused(r, "owner")
    r = await http.delete(f"{base}/members/{owner_id}", headers=bearer(owner))
    assert_refused(r, "owner")
    r = await http.patch(f"{base}/members/{member_id}", json={"role": "admin"}, headers=bearer(owner))
    assert r.status_code == 200 and r.json()["role"] == "admin"
    r = await http.patch(f"{base}/members/{other_admin_id}", json={"role": "member"}, headers=bearer(owner))
    assert r.status_code == 200 and r.json()["role"] == "member"
    r = await http.delete(f"{base}/members/{admin_id}", headers=bearer(owner))
    assert r.status_code == 204


async def test_every_step_is_published_as_a_cloudevent_matching_its_schema(
    service, http, sign_in, kafka_bootstrap
) -> None:
    async with TopicWatcher(kafka_bootstrap, [IDENTITY_ACCOUNTS]) as watcher:
        account_id, _, owner = await owner_session(service, http, sign_in)
        member_id, _, _ = await _join(service, http, sign_in, owner, account_id, "member", permissions=["orders"])
        base = f"{service.base}/v1/accounts/{account_id}"
        r = await http.patch(f"{base}/members/{member_id}", json={"role": "admin"}, headers=bearer(owner))
        assert r.status_code == 200
        status, revoked = await invite(
            service, http, owner, account_id, email=new_email(), role="member", permissions=[]
        )
        assert status == 201
        r = await http.delete(f"{base}/invitations/{revoked['invitation_id']}", headers=bearer(owner))
        assert r.status_code == 204
        r = await http.delete(f"{base}/members/{member_id}", headers=bearer(owner))
        assert r.status_code == 204
        seen = await watcher.collect(lambda s: s.key == account_id, count=7, timeout_s=30)

    expected = [
        "AccountRegistered",
        "UserInvited",
        "InvitationAccepted",
        "MemberRoleChanged",
        "UserInvited",
        "InvitationRevoked",
        "MemberRemoved",
    ]
    assert [s.headers["ce_type"] for s in seen] == [f"unifiedseller.identity.{n}.v1" for n in expected]
    for index, record in enumerate(seen, start=1):
        env = Envelope.from_headers([(k, v.encode()) for k, v in record.headers.items()])  # validates the headers
        assert env.specversion == "1.0" and env.source == "/services/identity"
        assert env.partitionkey == account_id and env.subject == f"account-{account_id}"
        assert env.sequence == index and record.headers["content-type"] == "application/json"
        schema = json.loads((SCHEMAS / f"{env.type}.json").read_text())
        jsonschema.validate(record.value, schema, cls=jsonschema.Draft202012Validator)
        assert record.value["account_id"] == account_id
    assert len({s.headers["ce_id"] for s in seen}) == 7
    accepted = seen[2].value
    assert accepted["user_id"] == member_id and accepted["role"] == "member"


async def test_when_the_mail_server_refuses_nothing_is_created(service, http, sign_in, other_instance) -> None:
    account_id, _, owner = await owner_session(service, http, sign_in)
    email_addr = new_email("unlucky")
    async with other_instance(smtp_port=free_tcp_port(), smtp_timeout_s=2.0) as base:  # nothing listens there
        r = await http.post(
            f"{base}/v1/accounts/{account_id}/invitations",
            json={"email": email_addr, "role": "member", "permissions": ["orders"]},
            headers=bearer(owner),
        )
    assert r.status_code == 502 and r.headers["content-type"].startswith("application/problem+json")
    conn = await service.db()
    try:
        invitations = await conn.fetchval("SELECT count(*) FROM invitations WHERE email = $1", email_addr)
        events = await conn.fetchval("SELECT count(*) FROM event_store WHERE event_type LIKE '%UserInvited%'")
    finally:
        await conn.close()
    assert invitations == 0 and events == 0


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_removing_a_member_ends_their_single_sign_on(service, http, sign_in) -> None:
    """The member's browser session is revoked with the membership: even invited back into the same account,
    the old cookie opens nothing and the member types the password again."""
    account_id, _, owner = await owner_session(service, http, sign_in)
    member_id, member_email, _ = await _join(
        service, http, sign_in, owner, account_id, "member", permissions=["orders"]
    )
    browser = sign_in.client()
    final, _, _, _ = await sign_in.authorize(browser, member_email, MEMBER_PASSWORD)
    assert final.status_code == 200
    sso_cookie = browser.cookies.get("unified_sso")
    await browser.aclose()
    assert sso_cookie

    async def quiet_authorize() -> dict[str, list[str]]:
        async with httpx.AsyncClient(timeout=20.0, cookies={"unified_sso": sso_cookie}) as replay:
            r, _ = await service.authorize_get(replay, prompt="none")
        assert r.status_code == 302, r.text
        return parse_qs(urlsplit(r.headers["location"]).query)

    assert "code" in await quiet_authorize()
    r = await http.delete(f"{service.base}/v1/accounts/{account_id}/members/{member_id}", headers=bearer(owner))
    assert r.status_code == 204
    assert (await quiet_authorize())["error"] == ["login_required"]

    status, _ = await invite(service, http, owner, account_id, email=member_email, role="member", permissions=[])
    assert status == 201
    bodies = [m.get_body(preferencelist=("plain",)) for m in service.sink.mails() if m["To"] == member_email]
    assert len(bodies) == 2  # the first invitation and this one, in the order they were sent
    match = re.search(r"/invitations/accept\?token=([A-Za-z0-9_\-]+)", bodies[-1].get_content())
    assert match
    token_value = match.group(1)
    r = await http.post(
        f"{service.base}/v1/invitations/accept", json={"token": token_value, "password": MEMBER_PASSWORD}
    )
    assert r.status_code == 201 and r.json()["user_id"] == member_id  # the same user, a member again
    assert (await quiet_authorize())["error"] == ["login_required"]
    conn = await service.db()
    try:
        reasons = await conn.fetch("SELECT revoked_reason FROM browser_sessions WHERE user_id = $1", member_id)
    finally:
        await conn.close()
    assert reasons and {r["revoked_reason"] for r in reasons} == {"removed from the account"}


# -- an invitation carries its sender's authority --------------------------------------------------------------
async def revocations(service, account_id: str) -> dict[str, str]:
    """InvitationRevoked events in the account's stream (the outbox): invitation_id -> revoked_by."""
    conn = await service.db()
    try:
        rows = await conn.fetch(
            "SELECT payload FROM event_store WHERE stream_id = $1 AND event_type LIKE '%InvitationRevoked%'",
            f"account-{account_id}",
        )
    finally:
        await conn.close()
    payloads = [json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"] for r in rows]
    return {p["invitation_id"]: p["revoked_by"] for p in payloads}


async def revoked_at(service, invitation_id: str):
    conn = await service.db()
    try:
        return await conn.fetchval(
            "SELECT revoked_at FROM invitations WHERE invitation_id = $1", uuid.UUID(invitation_id)
        )
    finally:
        await conn.close()


async def accept(service, http, email_addr: str) -> httpx.Response:
    token_value = parse_qs(urlsplit(service.sink.link_to(email_addr)).query)["token"][0]
    return await http.post(
        f"{service.base}/v1/invitations/accept", json={"token": token_value, "password": MEMBER_PASSWORD}
    )


async def test_removing_or_demoting_an_admin_revokes_the_invitations_it_sent(service, http, sign_in) -> None:
    account_id, owner_id, owner = await owner_session(service, http, sign_in)
    base = f"{service.base}/v1/accounts/{account_id}"
    removed_id, _, removed = await _join(service, http, sign_in, owner, account_id, "admin", permissions=["orders"])
    demoted_id, _, demoted = await _join(
        service, http, sign_in, owner, account_id, "admin", permissions=["orders", "reports"]
    )
    narrowed_id, _, narrowed = await _join(
        service, http, sign_in, owner, account_id, "admin", permissions=["orders", "reports"]
    )
    sent: dict[str, tuple[str, str]] = {}  # name -> (invitation_id, email)
    for name, token, perms in [
        ("removed", removed, ["orders"]),
        ("demoted", demoted, ["reports"]),
        ("narrowed-reports", narrowed, ["reports"]),
        ("narrowed-orders", narrowed, ["orders"]),
        ("owner", owner, ["orders"]),
    ]:
        email_addr = new_email(name)
        status, body = await invite(
            service, http, token, account_id, email=email_addr, role="member", permissions=perms
        )
        assert status == 201, body
        sent[name] = (body["invitation_id"], email_addr)

    r = await http.delete(f"{base}/members/{removed_id}", headers=bearer(owner))
    assert r.status_code == 204
    r = await http.patch(f"{base}/members/{demoted_id}", json={"role": "member"}, headers=bearer(owner))
    assert r.status_code == 200
    r = await http.patch(f"{base}/members/{narrowed_id}", json={"permissions": ["orders"]}, headers=bearer(owner))
    assert r.status_code == 200

    gone = {"removed", "demoted", "narrowed-reports"}
    pending = (await http.get(f"{base}/members", headers=bearer(owner))).json()["invitations"]
    assert {i["invitation_id"] for i in pending} == {sent[n][0] for n in sent if n not in gone}
    # Each revocation is published, naming the owner who removed or changed the sender.
    assert await revocations(service, account_id) == {sent[n][0]: owner_id for n in gone}
    for name in gone:
        r = await accept(service, http, sent[name][1])
        assert r.status_code == 410 and "revoked" in r.json()["detail"], r.text
    # What the sender may still send stays good.
    for name in ("narrowed-orders", "owner"):
        assert (await accept(service, http, sent[name][1])).status_code == 201


async def test_acceptance_checks_the_senders_authority_as_it_is_now(service, http, sign_in) -> None:
    """Even an invitation that slipped past removal or demotion (here: the membership is changed in the
    database directly) is refused at acceptance when its sender is gone or may no longer grant what it
    offers; it is then revoked and the revocation published."""
    account_id, _, owner = await owner_session(service, http, sign_in)
    base = f"{service.base}/v1/accounts/{account_id}"
    gone_id, _, gone = await _join(service, http, sign_in, owner, account_id, "admin", permissions=["orders"])
    narrow_id, _, narrow = await _join(
        service, http, sign_in, owner, account_id, "admin", permissions=["orders"], marketplaces=["DE", "FR"]
    )
    from_gone, from_narrow = new_email("from-gone"), new_email("from-narrow")
    status, gone_inv = await invite(
        service, http, gone, account_id, email=from_gone, role="member", permissions=["orders"]
    )
    assert status == 201
    status, narrow_inv = await invite(
        service, http, narrow, account_id, email=from_narrow, role="member", permissions=["orders"], marketplaces=["FR"]
    )
    assert status == 201
    conn = await service.db()
    try:
        await conn.execute("DELETE FROM memberships WHERE user_id = $1", uuid.UUID(gone_id))
        await conn.execute(
            """UPDATE memberships SET marketplaces = '["A1PA6795UKMFR9"]'::jsonb WHERE user_id = $1""",
            uuid.UUID(narrow_id),
        )
    finally:
        await conn.close()

    r = await accept(service, http, from_gone)
    assert r.status_code == 410 and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert "no longer a member" in r.json()["detail"]
    r = await accept(service, http, from_narrow)
    assert_refused(r, "may no longer grant", "FR")

    assert await revoked_at(service, gone_inv["invitation_id"]) is not None
    assert await revoked_at(service, narrow_inv["invitation_id"]) is not None
    assert await revocations(service, account_id) == {
        gone_inv["invitation_id"]: gone_id,
        narrow_inv["invitation_id"]: narrow_id,
    }
    members = (await http.get(f"{base}/members", headers=bearer(owner))).json()
    assert {m["email"] for m in members["members"]}.isdisjoint({from_gone, from_narrow})
    assert members["invitations"] == []
    r = await accept(service, http, from_narrow)  # refused for good now
    assert r.status_code == 410 and "revoked" in r.json()["detail"]
