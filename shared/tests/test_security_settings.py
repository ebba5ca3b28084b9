"""Unit tests: operator credentials must be strong, Kafka logins are complete, and every answer carries the
headers that keep account data out of caches and browsers' content sniffing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from unified_shared.config import MIN_OPERATOR_TOKEN_LENGTH, ServiceSettings
from unified_shared.http_headers import SecurityHeaders
from unified_shared.kafka import KafkaSecurity
from unified_shared.local_secrets import MissingLocalSecrets, process_env
from unified_shared.problems import Problem
from unified_shared.runtime import ServiceRuntime, create_app


class WithOperator(ServiceSettings):
    operator_token: str | None = None


@pytest.mark.parametrize("token", ["local-operator-token", "x" * (MIN_OPERATOR_TOKEN_LENGTH - 1)])
def test_a_short_operator_token_refuses_to_start(token: str) -> None:
    with pytest.raises(ValidationError, match="OPERATOR_TOKEN must be at least 32"):
        WithOperator(operator_token=token)


@pytest.mark.parametrize("token", [None, "", "x" * MIN_OPERATOR_TOKEN_LENGTH])
def test_a_long_or_absent_operator_token_is_accepted(token: str | None) -> None:
    assert WithOperator(operator_token=token).operator_token == token


def test_no_operator_token_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPERATOR_TOKEN", raising=False)
    assert WithOperator().operator_token is None


def test_kafka_login_from_settings_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "svc-orders",
        "KAFKA_SASL_PASSWORD": "p" * 40,
        "KAFKA_SSL_CAFILE": "",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    security = ServiceSettings().kafka_security()
    assert security == KafkaSecurity.from_env(env)
    assert security.sasl_username == "svc-orders" and security.ssl_cafile is None
    kwargs = security.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["sasl_plain_password"] == "p" * 40
    assert kwargs["ssl_context"].check_hostname
    assert "p" * 40 not in repr(security) and "p" * 40 not in repr(ServiceSettings())


def test_a_half_configured_kafka_login_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.delenv("KAFKA_SASL_USERNAME", raising=False)
    monkeypatch.delenv("KAFKA_SASL_PASSWORD", raising=False)
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME"):
        ServiceSettings()
    with pytest.raises(ValueError, match="KAFKA_SECURITY_PROTOCOL"):
        KafkaSecurity(protocol="SASL")
    assert KafkaSecurity(protocol="PLAINTEXT").client_kwargs() == {"security_protocol": "PLAINTEXT"}


async def test_every_service_answer_carries_nosniff_and_no_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    app = create_app(ServiceRuntime(ServiceSettings(), migrations=[], publishes=False), title="t")

    @app.get("/v1/accounts/{account_id}/things")
    async def things(account_id: str) -> dict[str, str]:
        return {"account_id": account_id}

    @app.get("/v1/broken")
    async def broken() -> None:
        raise Problem(422, "Unprocessable", "field 'x' is bad")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for path in ("/v1/accounts/a1/things", "/v1/broken", "/v1/nowhere", "/health/live"):
            answer = await client.get(path)
            assert answer.headers["x-content-type-options"] == "nosniff", path
            assert answer.headers["cache-control"] == "no-store", path


async def test_a_route_that_sets_its_own_cache_control_keeps_it() -> None:
    app = FastAPI()
    app.add_middleware(SecurityHeaders)

    @app.get("/jwks")
    async def jwks() -> JSONResponse:
        return JSONResponse({"keys": []}, headers={"Cache-Control": "public, max-age=60"})

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answer = await client.get("/jwks")
    assert answer.headers["cache-control"] == "public, max-age=60"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_team_process_gets_its_own_kafka_login_and_no_platform_secret(tmp_path: Path) -> None:
    """``local_secrets run team-<team>``: the broker and the team's login; a service also gets its secrets."""
    (tmp_path / "kafka.env").write_text("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092\nKAFKA_SECURITY_PROTOCOL=SASL_SSL\n")
    (tmp_path / "secrets.env").write_text(
        "OPERATOR_TOKEN=" + "o" * 40 + "\nKAFKA_PASSWORD_TEAM_DOWNSTREAM_SALES_LEDGER=t\nKAFKA_PASSWORD_SVC_REGIONS=r\n"
    )
    team = process_env("team-downstream-sales-ledger", tmp_path)
    assert team == {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_USERNAME": "team-downstream-sales-ledger",
        "KAFKA_SASL_PASSWORD": "t",
    }
    regions = process_env("regions", tmp_path)
    assert (regions["KAFKA_SASL_USERNAME"], regions["OPERATOR_TOKEN"]) == ("svc-regions", "o" * 40)
    with pytest.raises(MissingLocalSecrets):
        process_env("team-unknown", tmp_path)
