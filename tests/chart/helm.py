"""The real Helm CLI for tests (the official binary ``make tools`` prepared: pinned, cached)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.support import prepared_tool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "secure-llm-gateway"
BASE_VALUES = ["--set", "gateway.upstream.apiKey=sk-test-upstream"]


@cache
def helm_binary() -> str:
    return prepared_tool("helm")


def helm(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def render(*values: str) -> list[dict[str, Any]]:
    """``helm template`` with ``values`` (``--set`` pairs and the like); the objects it renders."""
    out = helm("template", "rel", str(CHART), "--namespace", "llm", *BASE_VALUES, *values).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def kinds(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for obj in objects:
        found.setdefault(obj["kind"], []).append(obj["metadata"]["name"])
    return found
