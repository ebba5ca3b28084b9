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


def _type_signature(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A comparable summary of what values a property accepts (its JSON types and formats)."""
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return sorted((_type_signature(s, root) for s in schema["anyOf"]), key=json.dumps)
    sig: dict[str, Any] = {k: schema[k] for k in ("type", "format", "enum", "const") if k in schema}
    if schema.get("type") == "array" and "items" in schema:
        sig["items"] = _type_signature(schema["items"], root)
    if (
        schema.get("type") == "object"
        and "additionalProperties" in schema
        and isinstance(schema["additionalProperties"], dict)
    ):
        sig["values"] = _type_signature(schema["additionalProperties"], root)
    return sig


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    problems: list[str] = []
    return problems + _compare_object(old, old, new, new, path or old.get("title", "event"))


def _compare_object(
    old: dict[str, Any], old_root: dict[str, Any], new: dict[str, Any], new_root: dict[str, Any], path: str
) -> list[str]:
    old = _resolve(old, old_root)
    new = _resolve(new, new_root)
    problems: list[str] = []
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{path}.{name}: field removed")
            continue
        o, n = _resolve(old_prop, old_root), _resolve(new_props[name], new_root)
        if "properties" in o and "properties" in n:
            problems += _compare_object(o, old_root, n, new_root, f"{path}.{name}")
        elif _type_signature(o, old_root) != _type_signature(n, new_root):
            problems.append(f"{path}.{name}: type changed")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{path}.{name}: new required field")
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
