"""values.yaml, values.schema.json and the ## @param comments describe the same values."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.chart.helm import CHART


def leaves(values: Any, prefix: str = "") -> set[str]:
    """Dotted paths of values.yaml's leaves; maps the chart hands on whole (settings, labels) count once."""
    if isinstance(values, dict) and values and not prefix.rstrip(".").endswith(("settings", "labels")):
        return {path for key, value in values.items() for path in leaves(value, f"{prefix}{key}.")}
    return {prefix.rstrip(".")}


def schema_node(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in path.split("."):
        node = (node or {}).get("properties", {}).get(part)
    return node


def test_every_value_is_in_the_schema_with_a_description_or_type() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    missing = [path for path in sorted(leaves(values)) if schema_node(schema, path) is None]
    assert not missing, missing


def test_every_value_has_a_param_comment() -> None:
    text = (CHART / "values.yaml").read_text()
    documented = set(re.findall(r"^\s*## @param (\S+)", text, re.M))
    values = yaml.safe_load(text)
    undocumented = [
        path
        for path in sorted(leaves(values))
        if not any(path == d or path.startswith(d + ".") for d in documented)
    ]
    assert not undocumented, undocumented
