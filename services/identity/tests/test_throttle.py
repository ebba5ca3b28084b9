"""Throttling that stops password spraying without locking owners out (DESIGN 11): failed sign-ins count per
e-mail and source address, per address, per e-mail from anywhere (a higher ceiling) and per client, and
registrations count per address. Source addresses come from X-Forwarded-For, which the service trusts from
the local proxy (uvicorn's FORWARDED_ALLOW_IPS default, 127.0.0.1), as behind a real load balancer."""

from __future__ import annotations

import dataclasses
import uuid

import httpx

STRONG_PASSWORD = "correct horse battery staple 42"
ATTACKER = {"X-Forwarded-For": "203.0.113.66"}
OWNER_AT_HOME = {"X-Forwarded-For": "198.51.100.20"}


async def sign_in_form(service, http: httpx.AsyncClient, email_addr: str, password: str) -> dict[str, str]:
    page, fields = await service.authorize_get(http, state="throttle")
    assert page.status_code == 200, page.text
    return {**fields, "email": email_addr, "password": password}


async def test_spraying_many_emails_from_one_address_gets_429_after_at_most_ten_failures(service, http) -> None:
    form = await sign_in_form(service, http, "x@example.com", "Summer2026!")
    statuses = []
    for n in range(30):
        sprayed = {**form, "email": f"victim-{n}-{uuid.uuid4().hex[:6]}@example.com"}
        r = await http.post(f"{service.base}/authorize", data=sprayed, headers=ATTACKER)
        statuses.append(r.status_code)
    assert set(statuses) <= {401, 429}, statuses
    first_429 = statuses.index(429)
    assert first_429 <= 10, statuses  # at most 10 failures before the first 429
    assert set(statuses[first_429:]) == {429}, statuses
    r = await http.post(f"{service.base}/authorize", data={**form, "email": "late@example.com"}, headers=ATTACKER)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # Another address is not held back by this one's failures.
    r = await http.post(f"{service.base}/authorize", data={**form, "email": "other@example.com"}, headers=OWNER_AT_HOME)
    assert r.status_code == 401, r.text


async def test_the_owner_signs_in_from_another_address_while_an_attacker_hammers_the_email(service, http) -> None:
    _, _, owner_email = await service.register(http)
    form = await sign_in_form(service, http, owner_email, "wrong password 123")
    statuses = [
        (await http.post(f"{service.base}/authorize", data=form, headers=ATTACKER)).status_code for _ in range(30)
    ]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}, statuses
    # The attacker's address is held back even with the right password ...
    r = await http.post(f"{service.base}/authorize", data={**form, "password": STRONG_PASSWORD}, headers=ATTACKER)
    assert r.status_code == 429
    # ... while the owner, from home, signs in.
    r = await http.post(f"{service.base}/authorize", data={**form, "password": STRONG_PASSWORD}, headers=OWNER_AT_HOME)
    assert r.status_code == 302 and r.headers["location"].startswith(service.callback.url), r.text


async def test_many_addresses_on_one_email_meet_the_per_email_ceiling(service, http, other_instance) -> None:
    """A distributed attack on one account still stops: the e-mail's own ceiling counts every address."""
    _, _, owner_email = await service.register(http)
    async with other_instance(signin_max_failures_per_email=8) as base:
        form = await sign_in_form(dataclasses.replace(service, base=base), http, owner_email, "wrong password 123")
        statuses = []
        for n in range(10):
            r = await http.post(f"{base}/authorize", data=form, headers={"X-Forwarded-For": f"192.0.2.{n + 1}"})
            statuses.append(r.status_code)
        assert statuses[:8] == [401] * 8 and statuses[8:] == [429, 429], statuses


async def test_registration_is_throttled_per_address(service, http) -> None:
    def body() -> dict[str, str]:
        email_addr = f"new-{uuid.uuid4().hex[:10]}@example.com"
        return {"legal_name": "Acme", "home_marketplace": "DE", "email": email_addr, "password": STRONG_PASSWORD}

    statuses = [
        (await http.post(f"{service.base}/v1/accounts", json=body(), headers=ATTACKER)).status_code for _ in range(11)
    ]
    assert statuses == [201] * 10 + [429], statuses
    r = await http.post(f"{service.base}/v1/accounts", json=body(), headers=ATTACKER)
    assert r.status_code == 429
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) > 0
    # Another address still registers.
    r = await http.post(f"{service.base}/v1/accounts", json=body(), headers=OWNER_AT_HOME)
    assert r.status_code == 201, r.text
