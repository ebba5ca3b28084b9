"""Where the platform's public APIs are (DESIGN section 9 defaults, each overridable by environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default).rstrip("/")


@dataclass(frozen=True)
class Endpoints:
    identity: str = "http://127.0.0.1:8001"
    regions: str = "http://127.0.0.1:8002"
    orders: dict[str, str] = field(
        default_factory=lambda: {
            "NA": "http://127.0.0.1:8011",
            "EU": "http://127.0.0.1:8012",
            "FE": "http://127.0.0.1:8013",
        }
    )
    messages: dict[str, str] = field(
        default_factory=lambda: {
            "NA": "http://127.0.0.1:8021",
            "EU": "http://127.0.0.1:8022",
            "FE": "http://127.0.0.1:8023",
        }
    )
    seller_view: str = "http://127.0.0.1:8030"
    billing: str = "http://127.0.0.1:8040"
    # The seller's web app (not waited for by the driver: it talks to the APIs above, not the other way round).
    web: str = "http://127.0.0.1:8050"
    mail_dir: str = "/var/tmp/unified-seller/mail"
    operator_token: str = "local-operator-token"
    client_id: str = "unified-seller-cli"
    redirect_uri: str = "http://127.0.0.1:8765/callback"

    @classmethod
    def from_env(cls) -> Endpoints:
        return cls(
            identity=_env("DEMO_IDENTITY_URL", cls.identity),
            regions=_env("DEMO_REGIONS_URL", cls.regions),
            orders={r: _env(f"DEMO_ORDERS_{r}_URL", f"http://127.0.0.1:{p}") for r, p in _ports(8011).items()},
            messages={r: _env(f"DEMO_MESSAGES_{r}_URL", f"http://127.0.0.1:{p}") for r, p in _ports(8021).items()},
            seller_view=_env("DEMO_SELLER_VIEW_URL", cls.seller_view),
            billing=_env("DEMO_BILLING_URL", cls.billing),
            web=_env("DEMO_WEB_URL", cls.web),
            mail_dir=os.environ.get(
                "SMTP_SINK_DIR", os.path.join(os.environ.get("US_STATE_DIR", "/var/tmp/unified-seller"), "mail")
            ),
            operator_token=os.environ.get("OPERATOR_TOKEN", cls.operator_token),
        )

    def all_services(self) -> dict[str, str]:
        services = {"identity": self.identity, "regions": self.regions}
        services.update({f"orders-{r.lower()}": u for r, u in self.orders.items()})
        services.update({f"messages-{r.lower()}": u for r, u in self.messages.items()})
        services.update({"seller_view": self.seller_view, "billing": self.billing})
        return services


def _ports(base: int) -> dict[str, int]:
    return {"NA": base, "EU": base + 1, "FE": base + 2}
