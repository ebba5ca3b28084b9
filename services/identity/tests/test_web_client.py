"""What a confidential client on another origin (the seller's web app) needs from identity: a secret kept in a
file across re-registrations, and pages whose CSP lets their form's answer redirect back to the client."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

from unified_identity import pages
from unified_identity.__main__ import _client_secret


def test_secret_file_is_made_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "web-client-secret"
    args = argparse.Namespace(secret_file=str(path))
    first = _client_secret(args)
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _client_secret(args) == first
    assert _client_secret(argparse.Namespace(secret_file=None)) != first


def test_sign_in_page_may_send_its_answer_to_the_clients_origin() -> None:
    """Chrome applies form-action to the redirect that answers a POST: 'self' alone stops the way back."""
    page = pages.sign_in({"redirect_uri": "http://127.0.0.1:8050/auth/callback"}, client_name="web", csrf_token="t")
    csp = page.headers["content-security-policy"]
    assert "form-action 'self' http://127.0.0.1:8050;" in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    bare = pages.sign_in({"redirect_uri": "javascript:alert(1)"}, client_name="web", csrf_token="t")
    assert "form-action 'self';" in bare.headers["content-security-policy"]


def test_sign_out_page_may_send_its_answer_to_the_post_logout_origin() -> None:
    page = pages.confirm_sign_out(
        {"post_logout_redirect_uri": "https://shop.example/signed-out"}, csrf_token="t", email=None
    )
    assert "form-action 'self' https://shop.example;" in page.headers["content-security-policy"]
