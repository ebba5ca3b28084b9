"""Settings from the environment (pydantic-settings). Each service subclasses with its own prefix."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service needs. Environment names: ``<PREFIX>DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``..."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    service_name: str = "service"
    database_url: str = "postgresql://postgres@127.0.0.1:55432/postgres"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
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
