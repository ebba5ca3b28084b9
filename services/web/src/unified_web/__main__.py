"""CLI: ``python -m unified_web serve|migrate|settings`` (serve applies the migrations on start too)."""

from __future__ import annotations

from unified_shared.bootstrap import service_main
from unified_web.bootstrap import MIGRATIONS, bootstrap
from unified_web.settings import Settings


def main(argv: list[str] | None = None) -> None:
    service_main(argv, settings=Settings, bootstrap=bootstrap, migrations=MIGRATIONS, description=__doc__)


if __name__ == "__main__":
    main()
