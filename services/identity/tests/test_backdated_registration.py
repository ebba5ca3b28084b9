"""Only the platform operator may register an account with an effective time in the past."""

import secrets
import uuid

STRONG = "correct horse battery staple 42"


async def test_backdating_a_registration_needs_the_operator_token(service, http, other_instance) -> None:
    body = {
        "legal_name": "Backdated GmbH",
        "home_marketplace": "DE",
        "email": f"back-{uuid.uuid4().hex[:8]}@example.com",
        "password": STRONG,
        "at": "2026-08-31T07:00:00Z",
    }
    refused = await http.post(f"{service.base}/v1/accounts", json=body)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    operator = secrets.token_urlsafe(32)
    async with other_instance(operator_token=operator) as base:
        wrong = await http.post(f"{base}/v1/accounts", json=body, headers={"X-Operator-Token": "nope"})
        assert wrong.status_code == 403
        accepted = await http.post(f"{base}/v1/accounts", json=body, headers={"X-Operator-Token": operator})
        assert accepted.status_code == 201, accepted.text
