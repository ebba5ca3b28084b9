"""Settings from the environment (pydantic-settings). Each service subclasses with its own prefix."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from unified_shared.kafka import KafkaSecurity

# An operator credential opens platform-wide actions (FX imports, closing any account's billing): it must be
# long and random, never a word someone could guess. ``make infra-up`` generates one into the state folder.
MIN_OPERATOR_TOKEN_LENGTH = 32


class ServiceSettings(BaseSettings):
    """What every service needs. Environment names: ``<PREFIX>DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``..."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    service_name: str = "service"
    database_url: str = "postgresql://postgres@127.0.0.1:55432/postgres"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # How the service authenticates to Kafka (unified_shared.kafka.KafkaSecurity); the local broker needs
    # SASL_SSL with SCRAM-SHA-512 and the CA that `make infra-up` made.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    # On SIGTERM, open requests get this long to finish (deploy/k8s: terminationGracePeriodSeconds is longer).
    shutdown_timeout_s: int = 20
    relay_poll_interval_s: float = 0.2
    # Health says "degraded" once the oldest unpublished event is older than this.
    outbox_degraded_after_s: float = 30.0
    consumer_group: str | None = None
    # JWKS of the identity service, used by every service to validate bearer tokens offline.
    identity_issuer: str = "http://127.0.0.1:8001"
    identity_jwks_url: str | None = None
    token_audience: str = "unified-seller"

    @model_validator(mode="after")
    def _operator_token_is_strong(self) -> Any:
        """A service with an operator credential refuses to start with a short one (no guessable defaults)."""
        token = getattr(self, "operator_token", None)
        if isinstance(token, SecretStr):
            token = token.get_secret_value()
        if token and len(token) < MIN_OPERATOR_TOKEN_LENGTH:
            raise ValueError(
                f"OPERATOR_TOKEN must be at least {MIN_OPERATOR_TOKEN_LENGTH} characters (generate one: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
                "or leave it unset (empty) to disable operator calls"
            )
        self.kafka_security()  # a half-configured broker login fails at start, not at the first send
        return self

    def kafka_security(self) -> KafkaSecurity:
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username or None,
            sasl_password=self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None,
            ssl_cafile=self.kafka_ssl_cafile or None,
        )
