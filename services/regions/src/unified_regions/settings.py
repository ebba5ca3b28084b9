"""Settings of the regions service (plain environment variables, DESIGN section 9 defaults)."""

from __future__ import annotations

from unified_shared.config import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "regions"
    http_port: int = 8002
    database_url: str = "postgresql://postgres@127.0.0.1:55432/regions"
    # FX rates are platform-wide, so their import is guarded by an operator credential, not a seller token.
    # Unset: the admin import API answers 503 (the CLI `import-fx` still works on the host).
    operator_token: str | None = None
    # Effective times: a seller may record a change up to this long after it happened; older ones (bringing an
    # existing seller's history over) need the operator credential, since billing may already have invoiced
    # that time. A time further than the allowed clock skew in the future is refused.
    backdate_grace_s: int = 24 * 3600
    future_skew_s: int = 300
    # Largest FX file the admin API accepts (the full ECB history CSV is about 2 MB).
    fx_max_upload_bytes: int = 32 * 1024 * 1024
