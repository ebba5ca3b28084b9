"""Unit tests of the pure rules (no I/O)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unified_identity import domain
from unified_identity.passwords import Passwords, common_passwords

COMMON = common_passwords()


def test_common_password_list_is_shipped_and_large() -> None:
    assert len(COMMON) >= 10_000
    assert "password" in COMMON and "123qweasdzxc" in COMMON


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 12"),
        ("123qweasdzxc", "too common"),  # 12 characters, but in the list
        ("QWERTY123456", "too common"),  # case does not help
        ("1qaz2wsx3edc!", "too common"),  # a common core with a little decoration
        ("aaaaaaaaaaaaaaaa", "repeats"),
        ("x" * 300, "at most"),
    ],
)
def test_password_policy_rejects(password: str, reason: str) -> None:
    problems = domain.password_problems(password, email="someone@example.com", common=COMMON)
    assert any(reason in p for p in problems), problems


def test_password_policy_accepts_a_long_uncommon_passphrase() -> None:
    assert domain.password_problems("correct horse battery staple 42", email="a@example.com", common=COMMON) == []


def test_password_must_not_be_the_email() -> None:
    problems = domain.password_problems(
        "longname.person@example.com", email="longname.person@example.com", common=COMMON
    )
    assert any("email" in p for p in problems)


async def test_argon2id_hashes_and_verifies() -> None:
    pw = Passwords(time_cost=1, memory_kib=8192, parallelism=1)
    stored = await pw.hash("correct horse battery staple 42")
    assert stored.startswith("$argon2id$")
    assert await pw.verify(stored, "correct horse battery staple 42")
    assert not await pw.verify(stored, "correct horse battery staple 43")
    assert not await pw.verify(None, "correct horse battery staple 42")  # unknown user: False, same work


def test_emails_are_normalised_and_checked() -> None:
    assert domain.normalize_email("  Alice@Example.COM ") == "alice@example.com"
    for bad in ("alice", "alice@", "@example.com", "a b@example.com", "alice@localhost"):
        with pytest.raises(domain.Invalid):
            domain.normalize_email(bad)


def test_scope_accepts_codes_and_ids_and_star() -> None:
    assert domain.resolve_scope(["DE", "FR"]) == ["A13V1IB3VIYZZH", "A1PA6795UKMFR9"]
    assert domain.resolve_scope(["A1PA6795UKMFR9", "de", "UK"]) == ["A1F83G8C2ARO7P", "A1PA6795UKMFR9"]
    assert domain.resolve_scope("*") == "*"
    with pytest.raises(domain.Invalid):
        domain.resolve_scope(["XX"])
    with pytest.raises(domain.Invalid):
        domain.resolve_scope([])


def test_permissions_billing_is_only_the_owners() -> None:
    assert domain.token_permissions("owner", []) == ["orders", "messages", "reports", "listings", "billing"]
    assert domain.token_permissions("member", ["orders", "billing"]) == ["orders"]
    assert domain.check_permissions(["listings", "orders"]) == ["listings", "orders"]
    # v1 identity events keep their enum: a newer permission travels in extra_permissions
    assert domain.event_permissions(["listings", "orders"]) == {
        "permissions": ["orders"],
        "extra_permissions": ["listings"],
    }
    assert domain.event_grant("admin", ["listings", "orders"], ["ATVPDKIKX0DER"]) == {
        "role": "admin",
        "permissions": ["orders"],
        "extra_permissions": ["listings"],
        "marketplace_scope": ["ATVPDKIKX0DER"],
    }
    with pytest.raises(domain.Forbidden):
        domain.check_permissions(["orders", "billing"])
    with pytest.raises(domain.Invalid):
        domain.check_permissions(["payouts"])
    with pytest.raises(domain.Forbidden):
        domain.check_change_target("owner")
    with pytest.raises(domain.Invalid):
        domain.check_invitable_role("owner")
    with pytest.raises(domain.Forbidden):
        domain.check_can_manage("member")
    domain.check_can_manage("admin")


def test_pkce_s256() -> None:
    # RFC 7636 appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert domain.s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert domain.pkce_ok(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not domain.pkce_ok(verifier[:-1] + "l", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not domain.pkce_ok(None, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert not domain.pkce_ok("short", domain.s256_challenge("short"))  # verifier must be 43-128 chars


def test_redirect_uri_is_an_exact_match() -> None:
    registered = ["http://127.0.0.1:8765/callback"]
    assert domain.redirect_uri_registered("http://127.0.0.1:8765/callback", registered)
    for other in (
        "http://127.0.0.1:8765/callbacks",
        "http://127.0.0.1:8765/callback/",
        "http://127.0.0.1:8765/Callback",
        "http://127.0.0.1:8765/callback?x=1",
    ):
        assert not domain.redirect_uri_registered(other, registered)


def test_throttle_blocks_after_five_failures_until_the_window_passes() -> None:
    policy = domain.ThrottlePolicy(5, timedelta(minutes=15))
    t0 = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    failures = [t0 + timedelta(minutes=i) for i in range(5)]  # 12:00 .. 12:04
    assert domain.retry_after_s(failures[:4], t0 + timedelta(minutes=5), policy) is None
    assert domain.retry_after_s(failures, t0 + timedelta(minutes=5), policy) == 600  # 12:00 ages out at 12:15
    assert domain.retry_after_s(failures, t0 + timedelta(minutes=14, seconds=59), policy) == 1
    assert domain.retry_after_s(failures, t0 + timedelta(minutes=15), policy) is None


# -- the sign-in form's CSRF token ----------------------------------------------------------------------------
KEY = b"k" * 32
BROWSER = domain.new_secret()


def test_csrf_token_is_bound_to_key_browser_and_time() -> None:
    now = 1_700_000_000
    token = domain.csrf_token(KEY, BROWSER, now)
    assert domain.csrf_token_ok(KEY, BROWSER, token, now=now + 10, ttl_s=3600)
    refused = {
        "other browser": (KEY, domain.new_secret(), token, now),
        "other server key": (b"o" * 32, BROWSER, token, now),
        "expired": (KEY, BROWSER, token, now + 3601),
        "from the future": (KEY, BROWSER, token, now - domain.CSRF_CLOCK_SKEW_S - 1),
        "no cookie": (KEY, None, token, now),
        "malformed cookie": (KEY, "not a cookie of ours", token, now),
        "no token": (KEY, BROWSER, None, now),
        "time changed": (KEY, BROWSER, f"{now + 1}.{token.partition('.')[2]}", now),
        "not a token": (KEY, BROWSER, "garbage", now),
        # str.isdigit() accepts these, int() does not: refused, never an exception (a 500).
        "superscript digit": (KEY, BROWSER, f"\u00b2.{token.partition('.')[2]}", now),
        "arabic-indic digits": (KEY, BROWSER, "\u0661\u0662.x", now),
        "signed": (KEY, BROWSER, f"+{now}.{token.partition('.')[2]}", now),
        "too long": (KEY, BROWSER, f"{'0' * 13}.x", now),
    }
    for name, (key, browser, candidate, at) in refused.items():
        assert not domain.csrf_token_ok(key, browser, candidate, now=at, ttl_s=3600), name


def test_a_csrf_token_is_good_only_for_the_form_it_was_made_for() -> None:
    now = 1_700_000_000
    sign_out = domain.csrf_token(KEY, BROWSER, now, purpose=domain.SIGN_OUT_FORM)
    assert domain.csrf_token_ok(KEY, BROWSER, sign_out, now=now, ttl_s=60, purpose=domain.SIGN_OUT_FORM)
    assert not domain.csrf_token_ok(KEY, BROWSER, sign_out, now=now, ttl_s=60)  # not a sign-in form's
    sign_in = domain.csrf_token(KEY, BROWSER, now)
    assert not domain.csrf_token_ok(KEY, BROWSER, sign_in, now=now, ttl_s=60, purpose=domain.SIGN_OUT_FORM)


# -- single sign-on decisions ---------------------------------------------------------------------------------
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SIGNED_IN = NOW - timedelta(minutes=30)


@pytest.mark.parametrize(
    ("prompt", "max_age", "hint", "auth_time", "expected"),
    [
        ("", None, None, SIGNED_IN, "reuse_session"),
        ("", None, None, None, "show_form"),
        ("none", None, None, None, "login_required"),
        ("none", None, None, SIGNED_IN, "reuse_session"),
        ("login", None, None, SIGNED_IN, "show_form"),
        ("select_account", None, None, SIGNED_IN, "show_form"),
        ("consent", None, None, SIGNED_IN, "reuse_session"),
        ("", 3600, None, SIGNED_IN, "reuse_session"),
        ("", 1800, None, SIGNED_IN, "reuse_session"),
        ("", 1799, None, SIGNED_IN, "show_form"),
        ("", 0, None, SIGNED_IN, "show_form"),
        ("none", 60, None, SIGNED_IN, "login_required"),
        ("", None, " Ann@Example.com", SIGNED_IN, "reuse_session"),
        ("", None, "bob@example.com", SIGNED_IN, "show_form"),
        ("none", None, "bob@example.com", SIGNED_IN, "login_required"),
    ],
)
def test_sso_outcome(
    prompt: str, max_age: int | None, hint: str | None, auth_time: datetime | None, expected: str
) -> None:
    outcome = domain.sso_outcome(
        prompt=domain.parse_prompt(prompt),
        max_age=max_age,
        login_hint=hint,
        session_auth_time=auth_time,
        session_email="ann@example.com" if auth_time else None,
        now=NOW,
    )
    assert outcome == expected


def test_prompt_and_max_age_parsing() -> None:
    assert domain.parse_prompt("login consent") == {"login", "consent"}
    assert domain.parse_prompt(None) == frozenset()
    with pytest.raises(domain.Invalid):
        domain.parse_prompt("none login")
    assert domain.parse_max_age("0") == 0 and domain.parse_max_age("") is None and domain.parse_max_age(None) is None
    for bad in ("-1", "1.5", "soon", "1" * 11):
        with pytest.raises(domain.Invalid):
            domain.parse_max_age(bad)


# -- who may manage whom, and grant what -------------------------------------------------------------------
DE_ID, FR_ID, IT_ID = "A1PA6795UKMFR9", "A13V1IB3VIYZZH", "APJ6JRA9NG5V4"
OWNER_G = domain.Grant.of("owner", [], "*")
ADMIN_DE_REPORTS = domain.Grant.of("admin", ["reports"], [DE_ID])
ADMIN_ALL = domain.Grant.of("admin", ["orders", "messages", "reports"], "*")


def member(perms: list[str], scope: str | list[str]) -> domain.Grant:
    return domain.Grant.of("member", perms, scope)


def forbidden(call: Any, *args: Any, **kwargs: Any) -> domain.Forbidden:
    with pytest.raises(domain.Forbidden) as info:
        call(*args, **kwargs)
    return info.value


def test_an_admin_invites_only_members_within_its_own_permissions_and_scope() -> None:
    domain.check_may_invite(ADMIN_DE_REPORTS, member(["reports"], [DE_ID]))
    domain.check_may_invite(ADMIN_DE_REPORTS, member([], [DE_ID]))
    assert "orders" in forbidden(domain.check_may_invite, ADMIN_DE_REPORTS, member(["orders"], [DE_ID])).detail
    err = forbidden(domain.check_may_invite, ADMIN_DE_REPORTS, member(["reports"], "*"))
    assert '"*"' in err.detail and err.field == "marketplaces"
    assert "FR" in forbidden(domain.check_may_invite, ADMIN_DE_REPORTS, member([], [DE_ID, FR_ID])).detail
    assert (
        "owner invites admins"
        in forbidden(domain.check_may_invite, ADMIN_ALL, domain.Grant.of("admin", [], [DE_ID])).detail
    )
    domain.check_may_invite(ADMIN_ALL, member(["orders", "messages"], "*"))
    # The owner holds everything, whatever its row says; a member invites nobody.
    domain.check_may_invite(OWNER_G, domain.Grant.of("admin", ["orders", "messages", "reports"], "*"))
    domain.check_may_invite(domain.Grant.of("owner", [], [DE_ID]), member(["orders"], "*"))
    forbidden(domain.check_may_invite, member(["orders"], "*"), member([], [DE_ID]))


def test_nobody_changes_their_own_grant_and_an_admin_changes_only_members() -> None:
    me = ADMIN_DE_REPORTS
    assert (
        "their own"
        in forbidden(
            domain.check_may_change, me, me, domain.Grant.of("admin", ["orders", "messages"], "*"), is_self=True
        ).detail
    )
    # Even a change that takes away is refused on oneself (no role games, no accidental lock-out).
    forbidden(domain.check_may_change, me, me, domain.Grant.of("admin", [], [DE_ID]), is_self=True)
    forbidden(domain.check_may_change, OWNER_G, OWNER_G, domain.Grant.of("admin", [], "*"), is_self=True)
    other_admin = domain.Grant.of("admin", [], [DE_ID])
    assert (
        "only the owner"
        in forbidden(
            domain.check_may_change, ADMIN_ALL, other_admin, domain.Grant.of("member", [], [DE_ID]), is_self=False
        ).detail
    )
    forbidden(domain.check_may_change, ADMIN_ALL, OWNER_G, domain.Grant.of("member", [], "*"), is_self=False)
    target = member(["reports"], [DE_ID])
    err = forbidden(
        domain.check_may_change, ADMIN_ALL, target, domain.Grant.of("admin", ["reports"], [DE_ID]), is_self=False
    )
    assert err.field == "role"
    # The owner promotes, demotes and widens anyone else.
    domain.check_may_change(OWNER_G, target, domain.Grant.of("admin", ["orders"], "*"), is_self=False)
    domain.check_may_change(OWNER_G, other_admin, domain.Grant.of("member", [], [DE_ID]), is_self=False)
    with pytest.raises(domain.Invalid):
        domain.check_may_change(OWNER_G, target, domain.Grant.of("owner", [], "*"), is_self=False)


def test_an_admin_widens_a_member_only_within_its_own_but_may_always_narrow() -> None:
    admin = domain.Grant.of("admin", ["orders", "reports"], [DE_ID, FR_ID])
    target = member(["orders"], [DE_ID])

    def change(new: domain.Grant) -> None:
        domain.check_may_change(admin, target, new, is_self=False)

    change(member(["orders", "reports"], [DE_ID, FR_ID]))
    forbidden(change, member(["orders", "messages"], [DE_ID]))  # a permission the admin lacks
    forbidden(change, member(["orders"], [DE_ID, IT_ID]))  # a marketplace outside the admin's scope
    forbidden(change, member(["orders"], "*"))
    # Taking away is always allowed, even from someone whose grant exceeds the admin's.
    wide = member(["orders", "messages"], "*")
    domain.check_may_change(admin, wide, member(["messages"], "*"), is_self=False)
    domain.check_may_change(admin, wide, member(["orders", "messages"], [IT_ID]), is_self=False)
    domain.check_may_change(admin, wide, member(["orders", "messages"], "*"), is_self=False)  # unchanged
    # Once the change gives something, the whole result must lie within the admin's grant.
    forbidden(
        domain.check_may_change,
        admin,
        member(["messages"], [DE_ID]),
        member(["messages", "orders"], [DE_ID]),
        is_self=False,
    )
    assert domain.widens(None, member([], [DE_ID]))
    assert domain.widens(member([], [DE_ID]), member([], "*"))
    assert not domain.widens(member(["orders"], "*"), member(["orders"], [DE_ID]))


def test_removal_and_revocation_rules() -> None:
    domain.check_may_remove(ADMIN_DE_REPORTS, "member", is_self=False)
    domain.check_may_remove(OWNER_G, "admin", is_self=False)
    assert "only the owner" in forbidden(domain.check_may_remove, ADMIN_ALL, "admin", is_self=False).detail
    assert "themselves" in forbidden(domain.check_may_remove, ADMIN_ALL, "admin", is_self=True).detail
    forbidden(domain.check_may_remove, ADMIN_ALL, "owner", is_self=False)
    forbidden(domain.check_may_remove, OWNER_G, "owner", is_self=True)
    forbidden(domain.check_may_remove, member(["orders"], "*"), "member", is_self=False)
    domain.check_may_revoke_invitation(ADMIN_DE_REPORTS, "member")
    domain.check_may_revoke_invitation(OWNER_G, "admin")
    forbidden(domain.check_may_revoke_invitation, ADMIN_ALL, "admin")


def test_an_invitation_lapses_with_its_senders_authority() -> None:
    admin = domain.Grant.of("admin", ["orders"], [DE_ID])
    invited = domain.Grant.of("member", ["orders"], [DE_ID])
    assert domain.inviter_refusal(admin, invited) is None
    assert domain.inviter_refusal(domain.Grant.of("owner", [], "*"), domain.Grant.of("admin", ["reports"], "*")) is None
    assert isinstance(domain.inviter_refusal(None, invited), domain.Gone)
    for now in (domain.Grant.of("member", ["orders"], [DE_ID]), domain.Grant.of("admin", ["reports"], [DE_ID])):
        refusal = domain.inviter_refusal(now, invited)
        assert isinstance(refusal, domain.Forbidden) and "revoked" in refusal.detail


# -- throttling along several lines, and names --------------------------------------------------------------
@given(
    st.lists(
        st.tuples(
            st.lists(st.integers(min_value=0, max_value=1799), max_size=12),
            st.integers(min_value=1, max_value=6),
        ),
        max_size=4,
    )
)
def test_the_longest_wait_is_that_of_the_strictest_line(lines: list[tuple[list[int], int]]) -> None:
    now = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
    counted = [
        (
            [now - timedelta(seconds=s) for s in seconds],
            domain.ThrottlePolicy(limit, timedelta(minutes=15)),
        )
        for seconds, limit in lines
    ]
    waits = [domain.retry_after_s(f, now, p) for f, p in counted]
    expected = max((w for w in waits if w is not None), default=None)
    assert domain.longest_wait(counted, now) == expected
    # Allowed exactly when every line allows one more attempt.
    assert (domain.longest_wait(counted, now) is None) == all(w is None for w in waits)


def test_a_persons_name_is_trimmed_and_printable() -> None:
    assert domain.person_name("  Lena   Schmidt ") == "Lena Schmidt"
    assert domain.person_name("   ") is None and domain.person_name(None) is None
    assert domain.person_name("Zoë 李") == "Zoë 李"
    for bad in ("Eve\x1b[31m", "a\x00b", "x" * 201):
        with pytest.raises(domain.Invalid) as exc:
            domain.person_name(bad)
        assert exc.value.field == "name"
