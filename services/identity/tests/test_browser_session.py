"""The sign-in form's CSRF protection and single sign-on, against the running service: a forged or foreign form
post is refused; after one password sign-in the browser's session cookie gets codes for any client without
the form, until end-session (or removal) ends it server-side; prompt=none and max_age are honoured."""

from __future__ import annotations

import hashlib
import secrets
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

from unified_identity import domain, store

STRONG_PASSWORD = "correct horse battery staple 42"
CLI = "unified-seller-cli"
SHOP = "shop-app"
SHOP_REDIRECT = "http://127.0.0.1:9/shop/callback"  # never followed: the tests read the Location header
SSO_COOKIE, CSRF_COOKIE = "unified_sso", "unified_signin_csrf"


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    """Each Set-Cookie header of a response, by cookie name, with its attributes."""
    out: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name in jar:
            out[name] = jar
    return out


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def register_shop_client(service) -> None:
    conn = await service.db()
    try:
        await store.upsert_client(
            conn,
            client_id=SHOP,
            name="Shop app",
            redirect_uris=[SHOP_REDIRECT],
            post_logout_redirect_uris=[],
            secret_hash=None,
        )
    finally:
        await conn.close()


async def browser_sign_in(service, browser: httpx.AsyncClient, email_addr: str) -> httpx.Response:
    """What a person does: open the form, type email and password, submit. Returns the 302 with the code."""
    page, fields = await service.authorize_get(browser)
    assert page.status_code == 200 and "csrf_token" in fields, page.text
    r = await browser.post(
        f"{service.base}/authorize", data={**fields, "email": email_addr, "password": STRONG_PASSWORD}
    )
    assert r.status_code == 302, r.text
    return r


async def redeem(
    http: httpx.AsyncClient, service, client_id: str, redirect_uri: str, code: str, verifier: str
) -> httpx.Response:
    """POST /token with the authorization_code grant (PKCE, a public client)."""
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    return await http.post(f"{service.base}/token", data=form)


async def exchange(http: httpx.AsyncClient, service, client_id: str, redirect_uri: str, code: str, verifier: str):
    r = await redeem(http, service, client_id, redirect_uri, code, verifier)
    assert r.status_code == 200, r.text
    return r.json()


def shop_request(challenge: str, **extra: str) -> dict[str, str]:
    return {
        "client_id": SHOP,
        "redirect_uri": SHOP_REDIRECT,
        "scope": "openid email offline_access",
        "state": "shop-state",
        "nonce": "shop-nonce",
        "code_challenge": challenge,
        **extra,
    }


async def csrf_key(service) -> bytes:
    conn = await service.db()
    try:
        return bytes(await conn.fetchval("SELECT secret FROM server_secrets WHERE name = 'sign-in-form-csrf'"))
    finally:
        await conn.close()


# -- login CSRF -------------------------------------------------------------------------------------------------
async def test_a_sign_in_post_without_this_browsers_csrf_token_is_refused(service, http) -> None:
    _, _, email_addr = await service.register(http)
    async with httpx.AsyncClient(timeout=20.0) as browser, httpx.AsyncClient(timeout=20.0) as attacker:
        page, fields = await service.authorize_get(browser)
        assert page.status_code == 200
        cookie = set_cookies(page)[CSRF_COOKIE][CSRF_COOKIE]
        assert cookie["httponly"] and cookie["samesite"].lower() == "lax" and cookie["path"] == "/"
        browser_cookie = cookie.value
        filled = {**fields, "email": email_addr, "password": STRONG_PASSWORD}
        url = f"{service.base}/authorize"

        # The attacker's own form and token (made for the attacker's cookie), and a cookie-less forged post.
        _, attacker_fields = await service.authorize_get(attacker)
        mac_flipped = fields["csrf_token"][:-1] + ("A" if fields["csrf_token"][-1] != "A" else "B")
        stale = domain.csrf_token(
            await csrf_key(service), browser_cookie, int(time.time()) - service.settings.csrf_token_ttl_s - 5
        )
        refused = {
            "no token": (browser, {k: v for k, v in filled.items() if k != "csrf_token"}),
            "no cookie (cross-site post)": (httpx.AsyncClient(timeout=20.0), filled),
            "another browser's token": (browser, {**filled, "csrf_token": attacker_fields["csrf_token"]}),
            "tampered token": (browser, {**filled, "csrf_token": mac_flipped}),
            "expired token": (browser, {**filled, "csrf_token": stale}),
        }
        for name, (client, data) in refused.items():
            r = await client.post(url, data=data)
            assert r.status_code == 403, (name, r.status_code, r.headers.get("location"))
            assert "location" not in r.headers and SSO_COOKIE not in set_cookies(r), name
            assert "expired or was not opened in this browser" in r.text, name
            again = service.authorize_params()
            assert all(f'value="{again[k]}"' in r.text for k in ("client_id", "state")), name  # the form, again
            if client is not browser:
                await client.aclose()
        assert service.callback.received == []

        # The form shown again carries a token for this browser: submitting it signs in.
        retry = await browser.post(url, data={k: v for k, v in filled.items() if k != "csrf_token"})
        assert retry.status_code == 403
        again_fields = {**page_fields(retry.text), "email": email_addr, "password": STRONG_PASSWORD}
        ok = await browser.post(url, data=again_fields)
        assert ok.status_code == 302 and "code" in query(ok.headers["location"]), ok.text


def page_fields(html: str) -> dict[str, str]:
    from html.parser import HTMLParser

    class Inputs(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.fields: dict[str, str] = {}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "input" and a.get("name"):
                self.fields[str(a["name"])] = a.get("value") or ""

    parser = Inputs()
    parser.feed(html)
    return parser.fields


# -- single sign-on -------------------------------------------------------------------------------------------
async def test_one_sign_in_then_another_client_gets_a_code_without_the_password(service, http, sign_in) -> None:
    await register_shop_client(service)
    _, user_id, email_addr = await service.register(http)
    started = int(time.time())
    client = sign_in.client()  # authlib's OAuth client; its cookie jar is the browser's
    final, verifier, state, _ = await sign_in.authorize(client, email_addr, STRONG_PASSWORD)
    token_a = await client.fetch_token(
        f"{service.base}/token", authorization_response=str(final.url), code_verifier=verifier, state=state
    )
    id_a = jwt.decode(token_a["id_token"], options={"verify_signature": False})
    assert started - 1 <= id_a["auth_time"] <= int(time.time()) + 1
    sso_cookie = client.cookies.get(SSO_COOKIE)
    assert sso_cookie

    # The same browser, another client: a code at once, no form, no password.
    shop_verifier = secrets.token_urlsafe(48)
    r, _ = await service.authorize_get(client, **shop_request(domain.s256_challenge(shop_verifier)))
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert location.startswith(SHOP_REDIRECT + "?") and query(location)["state"] == "shop-state"
    token_b = await exchange(http, service, SHOP, SHOP_REDIRECT, query(location)["code"], shop_verifier)
    id_b = jwt.decode(token_b["id_token"], options={"verify_signature": False})
    assert id_b["aud"] == SHOP and id_b["sub"] == user_id and id_b["nonce"] == "shop-nonce"
    assert id_b["auth_time"] == id_a["auth_time"]  # when the password was typed, not now
    assert id_b["sid"] != id_a["sid"]  # each client has its own refresh-token family

    # max_age within the session's age: still a code; max_age=0 or prompt=login: the form again.
    for extra, expect_code in (({"max_age": "3600"}, True), ({"max_age": "0"}, False), ({"prompt": "login"}, False)):
        r, fields = await service.authorize_get(client, **extra)
        if expect_code:
            assert r.status_code == 302 and "code" in query(r.headers["location"]), (extra, r.text)
        else:
            assert r.status_code == 200 and "password" in fields and "csrf_token" in fields, (extra, r.status_code)
    r, _ = await service.authorize_get(client, prompt="none", max_age="0")
    assert r.status_code == 302 and query(r.headers["location"])["error"] == "login_required"
    # A login_hint naming someone else is not answered with this user's session.
    r, fields = await service.authorize_get(client, login_hint="someone-else@example.com")
    assert r.status_code == 200 and fields["email"] == "someone-else@example.com"
    await client.aclose()

    # Only the cookie's hash is stored, with an expiry.
    conn = await service.db()
    try:
        row = await conn.fetchrow("SELECT * FROM browser_sessions WHERE user_id = $1", user_id)
    finally:
        await conn.close()
    assert bytes(row["token_hash"]) == hashlib.sha256(sso_cookie.encode()).digest()
    assert sso_cookie.encode() not in b"".join(str(v).encode() for v in row.values())
    ttl = (row["expires_at"] - row["created_at"]).total_seconds()
    assert ttl == service.settings.sso_session_ttl_s and row["revoked_at"] is None


async def test_the_session_cookie_is_httponly_lax_and_secure_over_https(service, http, other_instance) -> None:
    _, _, email_addr = await service.register(http)
    async with httpx.AsyncClient(timeout=20.0) as browser:
        r = await browser_sign_in(service, browser, email_addr)
    cookie = set_cookies(r)[SSO_COOKIE][SSO_COOKIE]
    assert cookie["httponly"] and cookie["samesite"].lower() == "lax" and cookie["path"] == "/"
    assert int(cookie["max-age"]) == service.settings.sso_session_ttl_s
    assert not cookie["secure"]  # http://127.0.0.1 (a Secure cookie would never come back over http)

    async with other_instance(cookie_secure=True) as base, httpx.AsyncClient(timeout=20.0) as raw:
        page = await raw.get(f"{base}/authorize", params=service.authorize_params())
        csrf = set_cookies(page)[f"__Host-{CSRF_COOKIE}"][f"__Host-{CSRF_COOKIE}"]
        assert csrf["secure"] and csrf["httponly"] and csrf["path"] == "/"
        fields = {**page_fields(page.text), "email": email_addr, "password": STRONG_PASSWORD}
        r = await raw.post(f"{base}/authorize", data=fields, headers={"Cookie": f"__Host-{CSRF_COOKIE}={csrf.value}"})
        assert r.status_code == 302, r.text
        sso = set_cookies(r)[f"__Host-{SSO_COOKIE}"][f"__Host-{SSO_COOKIE}"]
        assert sso["secure"] and sso["httponly"] and sso["samesite"].lower() == "lax" and sso["path"] == "/"


async def test_prompt_none_without_a_session_is_login_required(service, http) -> None:
    _, _, email_addr = await service.register(http)
    async with httpx.AsyncClient(timeout=20.0) as browser:
        r, _ = await service.authorize_get(browser, prompt="none", state="quiet")
        assert r.status_code == 302
        assert r.headers["location"].startswith(service.callback.url + "?")
        q = query(r.headers["location"])
        assert q["error"] == "login_required" and q["state"] == "quiet" and q["iss"] == service.settings.issuer
        assert "code" not in q
        # A cookie this service never issued (or a guessed one) is no session either.
        browser.cookies.set(SSO_COOKIE, domain.new_secret())
        r, _ = await service.authorize_get(browser, prompt="none")
        assert r.status_code == 302 and query(r.headers["location"])["error"] == "login_required"
        # Malformed prompt / max_age go back as invalid_request.
        for extra in ({"prompt": "none login"}, {"max_age": "soon"}):
            r, _ = await service.authorize_get(browser, **extra)
            assert r.status_code == 302 and query(r.headers["location"])["error"] == "invalid_request", extra
        # After a sign-in, prompt=none gets a code.
        await browser_sign_in(service, browser, email_addr)
        r, _ = await service.authorize_get(browser, prompt="none")
        assert r.status_code == 302 and "code" in query(r.headers["location"]), r.headers["location"]


async def test_end_session_ends_the_single_sign_on_for_every_client(service, http, sign_in) -> None:
    await register_shop_client(service)
    _, user_id, email_addr = await service.register(http)
    client = sign_in.client()
    final, verifier, state, _ = await sign_in.authorize(client, email_addr, STRONG_PASSWORD)
    token_a = await client.fetch_token(
        f"{service.base}/token", authorization_response=str(final.url), code_verifier=verifier, state=state
    )
    sso_cookie = client.cookies.get(SSO_COOKIE)
    shop_verifier = secrets.token_urlsafe(48)
    r, _ = await service.authorize_get(client, **shop_request(domain.s256_challenge(shop_verifier)), prompt="none")
    assert r.status_code == 302 and "code" in query(r.headers["location"]), r.headers["location"]
    token_b = await exchange(http, service, SHOP, SHOP_REDIRECT, query(r.headers["location"])["code"], shop_verifier)
    # A code issued before the sign-out, exchanged after it, gets nothing.
    late_verifier = secrets.token_urlsafe(48)
    r, _ = await service.authorize_get(client, **shop_request(domain.s256_challenge(late_verifier)), prompt="none")
    late_code = query(r.headers["location"])["code"]

    signed_out = service.callback.url.replace("/callback", "/signed-out")
    r = await client.get(
        f"{service.base}/end-session",
        params={"id_token_hint": token_a["id_token"], "post_logout_redirect_uri": signed_out, "state": "bye"},
        follow_redirects=False,
    )
    assert r.status_code == 302 and r.headers["location"] == f"{signed_out}?state=bye"
    gone = set_cookies(r)[SSO_COOKIE][SSO_COOKIE]
    assert gone.value in ("", '""') and int(gone["max-age"]) == 0
    assert client.cookies.get(SSO_COOKIE) is None

    # No session any more: prompt=none is login_required and the form is shown again.
    r, _ = await service.authorize_get(client, prompt="none")
    assert r.status_code == 302 and query(r.headers["location"])["error"] == "login_required"
    r, fields = await service.authorize_get(client)
    assert r.status_code == 200 and "password" in fields
    await client.aclose()
    # Ended on the server, not only in this browser: the old cookie value, replayed, opens nothing.
    async with httpx.AsyncClient(timeout=20.0, cookies={SSO_COOKIE: sso_cookie}) as replay:
        r, _ = await service.authorize_get(replay, prompt="none")
        assert r.status_code == 302 and query(r.headers["location"])["error"] == "login_required"
    # Single sign-out: the other client's refresh-token family, born from the same sign-on, is ended too.
    r = await service.refresh(http, token_b["refresh_token"], SHOP)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = await redeem(http, service, SHOP, SHOP_REDIRECT, late_code, late_verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    conn = await service.db()
    try:
        row = await conn.fetchrow("SELECT revoked_at, revoked_reason FROM browser_sessions WHERE user_id = $1", user_id)
    finally:
        await conn.close()
    assert row["revoked_at"] is not None and row["revoked_reason"] == "signed out"


async def test_an_expired_session_is_not_used(service, http) -> None:
    _, user_id, email_addr = await service.register(http)
    async with httpx.AsyncClient(timeout=20.0) as browser:
        await browser_sign_in(service, browser, email_addr)
        r, _ = await service.authorize_get(browser, prompt="none")
        assert r.status_code == 302 and "code" in query(r.headers["location"])
        conn = await service.db()
        try:  # the session's lifetime passes
            await conn.execute(
                "UPDATE browser_sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1", user_id
            )
        finally:
            await conn.close()
        r, _ = await service.authorize_get(browser, prompt="none")
        assert r.status_code == 302 and query(r.headers["location"])["error"] == "login_required"
        assert int(set_cookies(r)[SSO_COOKIE][SSO_COOKIE]["max-age"]) == 0  # the dead cookie is dropped


async def test_a_new_sign_in_replaces_the_browsers_session(service, http) -> None:
    """Whoever signs in last owns the browser's session; the previous cookie value opens nothing."""
    _, first_id, first = await service.register(http)
    _, second_id, second = await service.register(http)
    async with httpx.AsyncClient(timeout=20.0) as browser:
        await browser_sign_in(service, browser, first)
        old_cookie = browser.cookies.get(SSO_COOKIE)
        r, _ = await service.authorize_get(browser, prompt="login")
        r = await browser.post(
            f"{service.base}/authorize",
            data={**page_fields(r.text), "email": second, "password": STRONG_PASSWORD},
        )
        assert r.status_code == 302
        new_cookie = browser.cookies.get(SSO_COOKIE)
        assert new_cookie and new_cookie != old_cookie
    async with httpx.AsyncClient(timeout=20.0, cookies={SSO_COOKIE: old_cookie}) as replay:
        r, _ = await service.authorize_get(replay, prompt="none")
        assert query(r.headers["location"])["error"] == "login_required"
    async with httpx.AsyncClient(timeout=20.0, cookies={SSO_COOKIE: new_cookie}) as current:
        r, _ = await service.authorize_get(current, prompt="none")
        code = query(r.headers["location"])["code"]
        conn = await service.db()
        try:
            owner = await conn.fetchval(
                "SELECT user_id FROM authorization_codes WHERE code_hash = $1", hashlib.sha256(code.encode()).digest()
            )
        finally:
            await conn.close()
        assert str(owner) == second_id != first_id


# -- logout CSRF --------------------------------------------------------------------------------------------------
async def test_end_session_without_the_users_id_token_only_asks_and_the_confirmed_post_signs_out(
    service, http, sign_in
) -> None:
    """Any site can make a browser GET /end-session (SameSite=Lax sends the cookie along). Without an ID token of
    the cookie's user that GET ends nothing, it shows a sign-out page; only that page's form, posted back with its
    CSRF token, signs the browser out. Someone else's ID token ends only that someone's session."""
    _, _, email_addr = await service.register(http)
    browser = sign_in.client()
    final, verifier, state, _ = await sign_in.authorize(browser, email_addr, STRONG_PASSWORD)
    token = await browser.fetch_token(
        f"{service.base}/token", authorization_response=str(final.url), code_verifier=verifier, state=state
    )
    refresh_token = token["refresh_token"]
    signed_out = service.callback.url.replace("/callback", "/signed-out")
    logout = {"post_logout_redirect_uri": signed_out, "state": "bye", "client_id": CLI}

    async def still_signed_in() -> None:
        nonlocal refresh_token
        r, _ = await service.authorize_get(browser, prompt="none")
        assert r.status_code == 302 and "code" in query(r.headers["location"]), r.headers["location"]
        r = await service.refresh(http, refresh_token)
        assert r.status_code == 200, r.text
        refresh_token = r.json()["refresh_token"]

    # 1. The cross-site GET (no hint): a confirmation page, nothing ended, the cookie kept.
    page = await browser.get(f"{service.base}/end-session", params=logout, follow_redirects=False)
    assert page.status_code == 200 and 'action="/end-session"' in page.text and email_addr in page.text, page.text
    assert SSO_COOKIE not in set_cookies(page)
    fields = page_fields(page.text)
    assert fields["post_logout_redirect_uri"] == signed_out and fields["state"] == "bye" and fields["csrf_token"]
    await still_signed_in()

    # 2. A forged POST (no token, the sign-in form's token, or a token made for another browser) ends nothing.
    _, sign_in_form = await service.authorize_get(browser, prompt="login")
    key = await csrf_key(service)
    other_browser = domain.csrf_token(key, domain.new_secret(), int(time.time()), purpose=domain.SIGN_OUT_FORM)
    for forged in ({}, {"csrf_token": sign_in_form["csrf_token"]}, {"csrf_token": other_browser}):
        r = await browser.post(f"{service.base}/end-session", data={**logout, **forged})
        assert r.status_code == 403 and SSO_COOKIE not in set_cookies(r), r.text
        await still_signed_in()

    # 3. Someone else's ID token ends that someone's session, nothing of this browser's.
    _, _, _, other_token = await sign_in.new_owner(http)
    r = await browser.get(f"{service.base}/end-session", params={**logout, "id_token_hint": other_token["id_token"]})
    assert r.status_code == 302 and r.headers["location"] == f"{signed_out}?state=bye"
    assert SSO_COOKIE not in set_cookies(r)
    assert (await service.refresh(http, other_token["refresh_token"])).json()["error"] == "invalid_grant"
    await still_signed_in()

    # 4. The user confirms: the page's own form signs out, then back to the app with its state.
    r = await browser.post(f"{service.base}/end-session", data=fields)
    assert r.status_code == 302 and r.headers["location"] == f"{signed_out}?state=bye", r.text
    assert int(set_cookies(r)[SSO_COOKIE][SSO_COOKIE]["max-age"]) == 0
    r = await service.refresh(http, refresh_token)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r, _ = await service.authorize_get(browser, prompt="none")
    assert query(r.headers["location"])["error"] == "login_required"
    await browser.aclose()


async def test_end_session_with_the_users_own_id_token_signs_out_at_once(service, http, sign_in) -> None:
    _, _, email_addr = await service.register(http)
    browser = sign_in.client()
    final, verifier, state, _ = await sign_in.authorize(browser, email_addr, STRONG_PASSWORD)
    token = await browser.fetch_token(
        f"{service.base}/token", authorization_response=str(final.url), code_verifier=verifier, state=state
    )
    r = await browser.get(f"{service.base}/end-session", params={"id_token_hint": token["id_token"]})
    assert r.status_code == 200 and "You are signed out" in r.text, r.text
    assert int(set_cookies(r)[SSO_COOKIE][SSO_COOKIE]["max-age"]) == 0
    r, _ = await service.authorize_get(browser, prompt="none")
    assert query(r.headers["location"])["error"] == "login_required"
    await browser.aclose()
