"""Run: ``downstream-consumer`` (settings from the environment: see README.md)."""

from __future__ import annotations

import asyncio
import logging

from downstream_consumer.app import Counters, build
from downstream_consumer.settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    app = build(Settings.from_env(), {}, Counters())
    asyncio.run(app.run())


if __name__ == "__main__":
    main()
