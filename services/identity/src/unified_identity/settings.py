"""Settings of the identity service, from plain environment variables (DESIGN section 9 defaults)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from unified_shared.config import ServiceSettings

MAX_ACCESS_TOKEN_TTL_S = 600


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    service_name: str = "identity"
    database_url: str = "postgresql://postgres@127.0.0.1:55432/identity"
    http_port: int = 8001
    # The platform operator's credential (header X-Operator-Token): only it may backdate a registration,
    # e.g. when an existing seller's history is brought over. Unset: nobody may.
    operator_token: str | None = None
    # Where browsers and clients reach this service; also the OIDC issuer. Env PUBLIC_URL, else IDENTITY_ISSUER.
    public_url: str | None = Field(default=None, validation_alias=AliasChoices("PUBLIC_URL", "public_url"))

    # Outgoing mail (the local default is the SMTP sink: `python -m unified_identity smtp-sink`).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10.0
    smtp_sink_dir: str = "/var/tmp/unified-seller/mail"
    mail_from: str = "unified-seller <no-reply@unified-seller.localhost>"

    # Token lifetimes. Access and ID tokens are at most 10 minutes.
    access_token_ttl_s: int = Field(default=600, gt=0, le=MAX_ACCESS_TOKEN_TTL_S)
    id_token_ttl_s: int = Field(default=600, gt=0, le=MAX_ACCESS_TOKEN_TTL_S)
    refresh_token_ttl_s: int = 30 * 24 * 3600
    authorization_code_ttl_s: int = 120
    invitation_ttl_s: int = 7 * 24 * 3600
    email_verification_ttl_s: int = Field(default=24 * 3600, gt=0)

    # Sign-in throttle (failures within the window, across every process; then 429 with Retry-After): per
    # e-mail from one source address, per source address over any e-mails (password spraying), per e-mail from
    # anywhere (a higher ceiling, so an attacker on one address cannot lock the owner out), per OAuth client.
    # The source address is the peer's, or X-Forwarded-For's from a proxy trusted by FORWARDED_ALLOW_IPS.
    signin_max_failures: int = Field(default=5, gt=0)
    signin_max_failures_per_address: int = Field(default=10, gt=0)
    signin_max_failures_per_email: int = Field(default=50, gt=0)
    signin_max_failures_per_client: int = Field(default=1000, gt=0)
    signin_window_s: int = Field(default=15 * 60, gt=0)
    # Registrations per source address within the window (each costs an Argon2id hash). The operator's
    # registrations (X-Operator-Token) are not counted.
    registrations_per_address: int = Field(default=10, gt=0)
    registration_window_s: int = Field(default=3600, gt=0)

    # Single sign-on: a password sign-in opens a browser session (cookie + row in PostgreSQL) that lets later
    # authorization requests of any client skip the password form until it expires (absolute, not sliding).
    sso_session_ttl_s: int = Field(default=12 * 3600, gt=0)
    # The sign-in form's CSRF token is good for this long; an older form is shown again with a fresh token.
    csrf_token_ttl_s: int = Field(default=3600, gt=0)
    # Fernet key(s) that encrypt the signing keys at rest (comma-separated to rotate: the first encrypts).
    # Required: the service refuses to start without it. `python -m unified_identity new-key-encryption-key`.
    identity_key_encryption_key: SecretStr | None = None
    # Key of the CSRF tokens' HMAC (at least 32 characters). Unset: a random key is created once in the
    # database and shared by every process of the service.
    csrf_secret: str | None = Field(default=None, min_length=32)
    # Secure attribute (and the __Host- name prefix) of the cookies. Unset: on when PUBLIC_URL is https.
    cookie_secure: bool | None = None

    # The public client registered by default (comma-separated redirect URIs, exact match).
    cli_client_id: str = "unified-seller-cli"
    cli_redirect_uris: str = "http://127.0.0.1:8765/callback"
    cli_post_logout_redirect_uris: str = "http://127.0.0.1:8765/signed-out"

    # Argon2id cost (argon2-cffi defaults: RFC 9106 low-memory profile).
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4

    @model_validator(mode="after")
    def _issuer_from_public_url(self) -> Settings:
        # One name for the issuer everywhere: the validator of this process must expect the same ``iss``.
        url = (self.public_url or self.identity_issuer).rstrip("/")
        self.public_url = url
        self.identity_issuer = url
        return self

    @property
    def issuer(self) -> str:
        assert self.public_url is not None
        return self.public_url

    @property
    def key_encryption_key(self) -> str | None:
        key: SecretStr | str | None = self.identity_key_encryption_key
        return key.get_secret_value() if isinstance(key, SecretStr) else key

    @property
    def cookies_secure(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.issuer.lower().startswith("https://")

    @property
    def cli_redirect_uri_list(self) -> list[str]:
        return [u.strip() for u in self.cli_redirect_uris.split(",") if u.strip()]

    @property
    def cli_post_logout_uri_list(self) -> list[str]:
        return [u.strip() for u in self.cli_post_logout_redirect_uris.split(",") if u.strip()]

    @property
    def key_publish_grace_s(self) -> int:
        """How long a retired key stays in the JWKS: until the last token it signed has expired (+ leeway)."""
        return max(self.access_token_ttl_s, self.id_token_ttl_s) + 60
