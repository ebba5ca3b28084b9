"""The contracts package (contracts/, distribution unified-contracts) stands on its own for downstream teams:
its wheel has no dependency and carries every event type's JSON Schema and every AsyncAPI document as they are
committed in docs/, and its small API reads them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from unified_shared.events import registered_types

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_has_no_dependency_and_every_schema_and_asyncapi_document(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT / "contracts"),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("unified_contracts-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(n).decode() for n in names if n.endswith("METADATA"))
    assert "Requires-Dist" not in metadata
    schemas = {p.name for p in (ROOT / "docs" / "schemas").glob("*.json")}
    assert {
        n.removeprefix("unified_contracts/schemas/") for n in names if n.startswith("unified_contracts/schemas/")
    } == schemas
    documents = {p.name for p in (ROOT / "docs" / "asyncapi").glob("*.json")}
    assert {
        n.removeprefix("unified_contracts/asyncapi/") for n in names if n.startswith("unified_contracts/asyncapi/")
    } == documents


def test_the_api_reads_the_schema_of_every_registered_event_type() -> None:
    sys.path.insert(0, str(ROOT / "contracts" / "src"))
    import unified_contracts as contracts

    # The platform's own event types (other tests register throwaway ones in the same process).
    platform = {t: m for t, m in registered_types().items() if m.__module__.startswith("unified_shared.contracts")}
    assert contracts.event_types() == sorted(platform)
    for ce_type, model in platform.items():
        assert contracts.topic_of(ce_type) == model.TOPIC
        assert contracts.schema(ce_type)["x-ce-type"] == ce_type
    assert contracts.asyncapi("billing")["info"]["title"] == "unified-seller billing"
