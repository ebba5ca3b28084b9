"""The few plain HTML pages a person sees: sign-in, accept an invitation, errors, signed out.

Every value is HTML-escaped; pages may not be framed (no clickjacking of the password form)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse

AUTHORIZE_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)

# The sign-in form's anti-CSRF field; its value is bound to the browser's CSRF cookie (see oidc.py).
CSRF_FIELD = "csrf_token"

_SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}"
    "label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}"
    "button{margin-top:1.2rem;padding:.6rem 1.2rem}.error{color:#a00;background:#fee;padding:.6rem}"
)


def _form_action_to(uri: str | None) -> dict[str, str]:
    """A CSP whose form-action also allows the origin the form's answer redirects to: browsers apply
    form-action to the redirects after a submission, so 'self' alone stops a sign-in (or sign-out) on its
    way back to a client of another origin. The URI is a registered one (checked before the page is shown)."""
    parts = urlsplit(uri or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return {}
    csp = _SECURITY_HEADERS["Content-Security-Policy"].replace(
        "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}"
    )
    return {"Content-Security-Policy": csp}


def _page(title: str, body: str, *, status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head>'
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={**_SECURITY_HEADERS, **(headers or {})})


def _hidden_fields(params: Mapping[str, str], names: tuple[str, ...], csrf_token: str) -> str:
    """What a form carries over to its POST: the named parameters it was opened with, and its CSRF token."""
    carried = [name for name in names if params.get(name)]
    hidden = "".join(f'<input type="hidden" name="{name}" value="{escape(params[name])}">' for name in carried)
    return hidden + f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token)}">'


def _error_message(error: str | None) -> str:
    return f'<p class="error" role="alert">{escape(error)}</p>' if error else ""


def sign_in(
    params: Mapping[str, str],
    *,
    client_name: str,
    csrf_token: str,
    email: str = "",
    error: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    hidden = _hidden_fields(params, AUTHORIZE_FIELDS, csrf_token)
    message = _error_message(error)
    body = (
        f"<p>Sign in to continue to <strong>{escape(client_name)}</strong>.</p>{message}"
        f'<form method="post" action="/authorize">{hidden}'
        f'<label for="email">Email</label>'
        f'<input id="email" name="email" type="email" autocomplete="username" required value="{escape(email)}">'
        f'<label for="password">Password</label>'
        f'<input id="password" name="password" type="password" autocomplete="current-password" required>'
        f'<button type="submit">Sign in</button></form>'
    )
    csp = _form_action_to(params.get("redirect_uri"))
    return _page("Sign in to unified-seller", body, status=status, headers={**csp, **(headers or {})})


def error(title: str, detail: str, *, status: int = 400, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    return _page(title, f'<p class="error">{escape(detail)}</p>', status=status, headers=headers)


def accept_invitation(token: str, *, error: str | None = None, status: int = 200) -> HTMLResponse:
    message = _error_message(error)
    body = (
        f"<p>Choose a password (at least 12 characters, not a common one) to join the team.</p>{message}"
        f'<form method="post" action="/invitations/accept">'
        f'<input type="hidden" name="token" value="{escape(token)}">'
        f'<label for="password">Password</label>'
        f'<input id="password" name="password" type="password" autocomplete="new-password" minlength="12" required>'
        f'<button type="submit">Accept the invitation</button></form>'
    )
    return _page("Accept your invitation", body, status=status)


def verify_email(token: str) -> HTMLResponse:
    """The verification link opens this page; only its button verifies (a mail scanner's GET does not)."""
    body = (
        "<p>Confirm that this e-mail address is yours.</p>"
        f'<form method="post" action="/email/verify"><input type="hidden" name="token" value="{escape(token)}">'
        '<button type="submit">Confirm my e-mail address</button></form>'
    )
    return _page("Confirm your e-mail address", body)


def email_verified(address: str) -> HTMLResponse:
    return _page("E-mail address confirmed", f"<p>{escape(address)} is confirmed. You may close this page.</p>")


def invitation_accepted() -> HTMLResponse:
    body = "<p>Your account is ready. Sign in from any unified-seller app.</p>"
    return _page("Welcome to the team", body, status=201)


# What the sign-out page carries over to its POST (the id_token_hint is not: it did not match, or was absent).
END_SESSION_FIELDS = ("post_logout_redirect_uri", "state", "client_id")


def confirm_sign_out(
    params: Mapping[str, str],
    *,
    csrf_token: str,
    email: str | None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    hidden = _hidden_fields(params, END_SESSION_FIELDS, csrf_token)
    message = _error_message(error)
    who = f" as <strong>{escape(email)}</strong>" if email else ""
    body = (
        f"<p>You are signed in{who}. Sign out of unified-seller in this browser, and of every app you signed in "
        f"to with it?</p>{message}"
        f'<form method="post" action="/end-session">{hidden}<button type="submit">Sign out</button></form>'
    )
    return _page("Sign out?", body, status=status, headers=_form_action_to(params.get("post_logout_redirect_uri")))


def signed_out() -> HTMLResponse:
    return _page("Signed out", "<p>You are signed out.</p>")
