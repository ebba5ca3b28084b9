"""JSON Schemas of every event type in ``docs/schemas/``, and the check that refuses breaking changes.

Breaking (for an existing consumer): a property removed, a property's type changed, a new required
property. Adding an optional property is fine. Breaking changes need a new type version (``.v2``).
Run: ``python -m unified_shared.schemas generate|check [--dir docs/schemas]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from unified_shared.events import registered_types


def current_schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for ce_type, model in sorted(registered_types().items()):
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"urn:unifiedseller:event:{ce_type}"
        schema["x-topic"] = model.TOPIC
        schema["x-ce-type"] = ce_type
        out[ce_type] = schema
    return out


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root["$defs"][ref.removeprefix("#/$defs/")], root)
    return schema


def _shallow(schema: dict[str, Any]) -> dict[str, Any]:
    """What a value must look like at this level: JSON type, format, enum, const."""
    return {k: schema[k] for k in ("type", "format", "enum", "const") if k in schema}


def _members(schema: dict[str, Any], root: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives a value may take (``anyOf`` expanded, references resolved)."""
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return [m for s in schema["anyOf"] for m in _members(s, root)]
    return [schema]


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """What would break a consumer written against ``old`` if producers moved to ``new``."""
    return _compare(old, old, new, new, path or old.get("title", "event"))


def _compare(
    old: dict[str, Any], old_root: dict[str, Any], new: dict[str, Any], new_root: dict[str, Any], path: str
) -> list[str]:
    old_members, new_members = _members(old, old_root), _members(new, new_root)
    old_null = [m for m in old_members if m.get("type") == "null"]
    new_null = [m for m in new_members if m.get("type") == "null"]
    old_values = [m for m in old_members if m.get("type") != "null"]
    new_values = [m for m in new_members if m.get("type") != "null"]
    if new_null and not old_null:
        return [f"{path}: type changed (may now be null)"]
    if len(old_values) != 1 or len(new_values) != 1:
        old_shapes = sorted((_shallow(m) for m in old_values), key=json.dumps)
        new_shapes = sorted((_shallow(m) for m in new_values), key=json.dumps)
        return [] if old_shapes == new_shapes else [f"{path}: type changed"]
    o, n = old_values[0], new_values[0]
    if _shallow(o) != _shallow(n):
        return [f"{path}: type changed"]
    problems: list[str] = []
    if "properties" in o or "properties" in n:
        old_props: dict[str, Any] = o.get("properties", {})
        new_props: dict[str, Any] = n.get("properties", {})
        for name, old_prop in old_props.items():
            if name not in new_props:
                problems.append(f"{path}.{name}: field removed")
            else:
                problems += _compare(old_prop, old_root, new_props[name], new_root, f"{path}.{name}")
        for name in sorted(set(n.get("required", [])) - set(o.get("required", []))):
            problems.append(f"{path}.{name}: new required field")
    if "items" in o and "items" in n:
        problems += _compare(o["items"], old_root, n["items"], new_root, f"{path}[]")
    old_values_schema, new_values_schema = o.get("additionalProperties"), n.get("additionalProperties")
    if isinstance(old_values_schema, dict) and isinstance(new_values_schema, dict):
        problems += _compare(old_values_schema, old_root, new_values_schema, new_root, f"{path}{{}}")
    return problems


def generate(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for ce_type, schema in current_schemas().items():
        path = directory / f"{ce_type}.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def check(directory: Path) -> list[str]:
    problems: list[str] = []
    current = current_schemas()
    for path in sorted(directory.glob("*.json")):
        ce_type = path.stem
        old = json.loads(path.read_text())
        if ce_type not in current:
            problems.append(f"{ce_type}: event type removed (consumers still expect it)")
            continue
        problems += breaking_changes(old, current[ce_type], ce_type)
    for ce_type in current:
        if not (directory / f"{ce_type}.json").exists():
            problems.append(f"{ce_type}: no committed schema (run make contracts)")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description="Event JSON Schemas: generate or check for breaking changes")
    parser.add_argument("action", choices=["generate", "check"])
    parser.add_argument("--dir", default="docs/schemas", type=Path)
    args = parser.parse_args()
    if args.action == "generate":
        written = generate(args.dir)
        print(f"{len(written)} schemas written to {args.dir}")
        return
    problems = check(args.dir)
    if problems:
        print("contract check FAILED: changes that break existing consumers:")
        for p in problems:
            print(f"  - {p}")
        sys.exit(1)
    print(f"contract check passed ({len(current_schemas())} event types)")


if __name__ == "__main__":
    main()
