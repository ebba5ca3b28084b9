"""CLI: ``python -m unified_orders serve|migrate|settings`` (REGION=NA|EU|FE picks the instance)."""

from __future__ import annotations

from unified_orders.bootstrap import MIGRATIONS, bootstrap
from unified_orders.settings import Settings
from unified_shared.bootstrap import service_main


def main(argv: list[str] | None = None) -> None:
    service_main(argv, settings=Settings, bootstrap=bootstrap, migrations=MIGRATIONS, description=__doc__)


if __name__ == "__main__":
    main()
