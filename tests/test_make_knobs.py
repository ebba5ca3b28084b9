"""The Makefile's documented knobs reach what they are for (a dry run: `make -n` runs nothing).

`EXAMPLES=n` (make fuzz's examples per operation) once shared its name with the Makefile's list of example
packages: `make fuzz` handed schemathesis the folder `examples/downstream-consumer` as a number and stopped at
collection, and `make lint EXAMPLES=50` would have looked for the downstream kit's sources in `50/src`.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dry_run(*args: str) -> str:
    """What ``make -n args`` would run; not the flags and variables of a ``make test`` this runs under."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(("args", "examples"), [((), "200"), (("EXAMPLES=7",), "7")])
def test_make_fuzz_hands_schemathesis_a_number_of_examples(args: tuple[str, ...], examples: str) -> None:
    assert re.findall(r"FUZZ_MAX_EXAMPLES=(\S+)", dry_run("fuzz", *args)) == [examples]


def test_the_downstream_kit_stays_in_lint_whatever_examples_says() -> None:
    for args in ((), ("EXAMPLES=7",)):
        lint = dry_run("lint", *args)
        assert ":examples/downstream-consumer/src " in lint and "-p downstream_consumer" in lint
