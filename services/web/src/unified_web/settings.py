"""Settings of the web app (plain environment variables, DESIGN section 9 defaults)."""

from __future__ import annotations

from pathlib import Path

from unified_shared.config import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "web"
    # Browser sessions only: the web app owns no facts.
    database_url: str = "postgresql://postgres@127.0.0.1:55432/web"
    http_port: int = 8050
    # Where browsers reach this app: the base of the OIDC redirect URIs (registered at identity).
    web_public_url: str = "http://127.0.0.1:8050"
    # The platform's public APIs (server side; the browser never sees them, except identity's pages).
    regions_url: str = "http://127.0.0.1:8002"
    orders_na_url: str = "http://127.0.0.1:8011"
    orders_eu_url: str = "http://127.0.0.1:8012"
    orders_fe_url: str = "http://127.0.0.1:8013"
    messages_na_url: str = "http://127.0.0.1:8021"
    messages_eu_url: str = "http://127.0.0.1:8022"
    messages_fe_url: str = "http://127.0.0.1:8023"
    seller_view_url: str = "http://127.0.0.1:8030"
    billing_url: str = "http://127.0.0.1:8040"
    # The confidential OIDC client this app signs in as (python -m unified_identity register-client ...).
    oidc_client_id: str = "unified-seller-web"
    oidc_client_secret: str | None = None
    # A file holding the secret (register-client --secret-file writes it); used when the variable is unset.
    oidc_client_secret_file: str | None = None
    # Absolute lifetime of a browser session here (identity's single sign-on session is 12 h too).
    session_ttl_s: int = 43200
    # A sign-in started but not finished is forgotten after this long.
    login_ttl_s: int = 600
    # Unset: Secure cookies (named with __Host-) when web_public_url is https.
    cookie_secure: bool | None = None
    # Locale of money and dates when the browser's Accept-Language names none we know.
    default_locale: str = "en_US"
    http_timeout_s: float = 20.0

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.web_public_url.startswith("https://")

    @property
    def redirect_uri(self) -> str:
        return f"{self.web_public_url.rstrip('/')}/auth/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.web_public_url.rstrip('/')}/signed-out"

    def client_secret(self) -> str:
        if self.oidc_client_secret:
            return self.oidc_client_secret
        if self.oidc_client_secret_file:
            return Path(self.oidc_client_secret_file).read_text().strip()
        raise RuntimeError("set OIDC_CLIENT_SECRET or OIDC_CLIENT_SECRET_FILE (register-client --confidential)")

    def orders_url(self, region: str) -> str:
        return {"NA": self.orders_na_url, "EU": self.orders_eu_url, "FE": self.orders_fe_url}[region]

    def messages_url(self, region: str) -> str:
        return {"NA": self.messages_na_url, "EU": self.messages_eu_url, "FE": self.messages_fe_url}[region]
