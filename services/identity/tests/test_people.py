""" "Add people" keeps the person: an invitation carries the invitee's name into the member list, and an
owner's e-mail address is verified by a link sent to it (``email_verified`` in userinfo and the ID token)."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt

from unified_shared.testing import TopicWatcher
from unified_shared.topics import IDENTITY_ACCOUNTS

MEMBER_PASSWORD = "another long passphrase 77"


def bearer(token: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}"}


def mail_text(service, address: str, subject_word: str) -> str:
    for msg in reversed(service.sink.mails()):
        if msg["To"] == address and subject_word in msg["Subject"]:
            body = msg.get_body(preferencelist=("plain",))
            assert body is not None
            return str(body.get_content())
    raise AssertionError(f"no '{subject_word}' mail to {address}")


async def test_the_invitees_name_travels_from_the_invitation_to_the_member_list(
    service, http, sign_in, kafka_bootstrap
) -> None:
    account_id, _, owner_email, owner = await sign_in.new_owner(http)
    base = f"{service.base}/v1/accounts/{account_id}"
    member_email = f"lena-{uuid.uuid4().hex[:8]}@example.com"
    async with TopicWatcher(kafka_bootstrap, [IDENTITY_ACCOUNTS]) as watcher:
        r = await http.post(
            f"{base}/invitations",
            json={"email": member_email, "name": "  Lena   Schmidt ", "role": "member", "permissions": ["orders"]},
            headers=bearer(owner),
        )
        assert r.status_code == 201, r.text
        pending = (await http.get(f"{base}/members", headers=bearer(owner))).json()["invitations"]
        assert [(i["email"], i["name"]) for i in pending] == [(member_email, "Lena Schmidt")]
        assert mail_text(service, member_email, "invited").startswith("Hello Lena Schmidt,")
        token = parse_qs(urlsplit(service.sink.link_to(member_email)).query)["token"][0]
        r = await http.post(f"{service.base}/v1/invitations/accept", json={"token": token, "password": MEMBER_PASSWORD})
        assert r.status_code == 201, r.text
        seen = await watcher.collect(lambda s: s.key == account_id and "Invit" in s.headers["ce_type"], count=2)
    members = (await http.get(f"{base}/members", headers=bearer(owner))).json()["members"]
    assert {m["email"]: m["name"] for m in members} == {owner_email: None, member_email: "Lena Schmidt"}
    assert [s.value.get("name") for s in seen] == ["Lena Schmidt", "Lena Schmidt"]
    client, member = await sign_in(member_email, MEMBER_PASSWORD)
    await client.aclose()
    info = (await http.get(f"{service.base}/userinfo", headers=bearer(member))).json()
    assert info["name"] == "Lena Schmidt" and info["email_verified"] is True  # the invitation link proved it

    r = await http.post(
        f"{base}/invitations",
        json={"email": f"x-{uuid.uuid4().hex[:6]}@example.com", "name": "Eve\x1b[31m red", "role": "member"},
        headers=bearer(owner),
    )
    assert r.status_code == 422 and r.json()["field"] == "name", r.text


async def test_the_owner_verifies_the_email_by_the_link_sent_to_it(service, http, sign_in) -> None:
    _, _, owner_email, owner = await sign_in.new_owner(http)
    info = (await http.get(f"{service.base}/userinfo", headers=bearer(owner))).json()
    assert info["email_verified"] is False
    assert jwt.decode(owner["id_token"], options={"verify_signature": False})["email_verified"] is False

    r = await http.post(f"{service.base}/v1/me/email-verification", headers=bearer(owner))
    assert r.status_code == 202, r.text
    match = re.search(r"(http://\S+/email/verify\?token=[A-Za-z0-9_\-]+)", mail_text(service, owner_email, "Confirm"))
    assert match, "no verification link in the mail"
    link = match.group(1)
    # Opening the link (or a mail scanner fetching it) verifies nothing: the page asks to confirm.
    page = await http.get(link)
    assert page.status_code == 200 and 'action="/email/verify"' in page.text
    assert (await http.get(f"{service.base}/userinfo", headers=bearer(owner))).json()["email_verified"] is False
    token = parse_qs(urlsplit(link).query)["token"][0]
    done = await http.post(f"{service.base}/email/verify", data={"token": token})
    assert done.status_code == 200 and owner_email in done.text

    assert (await http.get(f"{service.base}/userinfo", headers=bearer(owner))).json()["email_verified"] is True
    refreshed = await service.refresh(http, owner["refresh_token"])
    id_token = refreshed.json()["id_token"]
    assert jwt.decode(id_token, options={"verify_signature": False})["email_verified"] is True
    # The link works once; a verified address needs no more mails.
    again = await http.post(f"{service.base}/v1/email-verification/confirm", json={"token": token})
    assert again.status_code == 410
    r = await http.post(f"{service.base}/v1/me/email-verification", headers=bearer(refreshed.json()))
    assert r.status_code == 200 and r.json()["sent"] is False
