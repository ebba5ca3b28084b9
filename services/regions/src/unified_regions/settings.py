"""Settings of the regions service (plain environment variables, DESIGN section 9 defaults)."""

from __future__ import annotations

from pydantic import Field

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
    # Scheduled import of ECB's daily reference rates (the file import above stays). FX_EXTRA_SOURCES: JSON
    # {"EGP": "<url of an ECB-format file>"} for currencies ECB does not publish; without one they stay absent.
    fx_fetch_enabled: bool = True
    fx_fetch_url: str = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
    fx_fetch_interval_s: float = Field(default=3600.0, gt=0)
    fx_fetch_attempts: int = Field(default=5, ge=1)
    fx_fetch_backoff_s: float = Field(default=2.0, ge=0)
    fx_extra_sources: dict[str, str] = {}
