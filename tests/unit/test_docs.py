"""Docs that cannot drift: the README's settings table is the settings model's, its Cedar schema the
gateway's, its example policies valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from llm_gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_readme_settings_table_matches_the_settings_model() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/settings_table.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_setting_is_in_env_example() -> None:
    example = (ROOT / ".env.example").read_text()
    missing = [name.upper() for name in Settings.model_fields if f"{name.upper()}=" not in example]
    assert missing == []


def test_readme_shows_the_cedar_schema_as_it_is() -> None:
    schema = (ROOT / "service" / "llm_gateway" / "core" / "policy" / "gateway.cedarschema").read_text()
    assert f"```cedar\n{schema}```" in (ROOT / "README.md").read_text()


def test_example_policies_validate() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llm_gateway", "policy", "validate", "examples/policies"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
