"""Settings of the seller view (plain environment variables, DESIGN section 9 defaults)."""

from __future__ import annotations

from unified_shared.config import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "seller_view"
    database_url: str = "postgresql://postgres@127.0.0.1:55432/seller_view"
    http_port: int = 8030
    # Base of the consumer names: generation n consumes as "<consumer_group or seller-view>.g<n>".
    consumer_group: str | None = None
    # Where a brand-new view database starts reading: "earliest" (every topic's whole history, the default)
    # or "latest" (only events published from now on). Rebuilds replay from the same place.
    view_origin: str = "earliest"
    # How often the serving process looks for a generation switched by a rebuild.
    view_pointer_poll_s: float = 1.0

    @property
    def consumer_base(self) -> str:
        return self.consumer_group or "seller-view"
