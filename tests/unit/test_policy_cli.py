"""``secure-llm-gateway policy``, run as users run it: a process, its output and exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import TREE_PYTHONPATH

RULES = """
@id("free-models")
forbid (principal, action in Action::"invoke", resource)
when { principal.tier == "free" } unless { resource.name like "gpt-4o-mini*" };

@id("ceiling")
forbid (principal, action, resource) when { context has max_tokens && context.max_tokens > 4096 };

@id("no-email-to-public")
forbid (principal, action, resource in Upstream::"public") when { context.pii.contains("EMAIL") };
"""


def policy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llm_gateway", "policy", *args],
        env={"PYTHONPATH": TREE_PYTHONPATH, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    (tmp_path / "rules.cedar").write_text(RULES)
    (tmp_path / "README.md").write_text("not a policy: ignored")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "status", "output"),
    [
        (
            ["--tenant", "t", "--model", "gpt-4o", "--tier", "free"],
            1,
            "deny\ndetermined by: rules.cedar:free-models\n",
        ),
        (
            ["--tenant", "t", "--model", "gpt-4o-mini", "--tier", "free"],
            0,
            "allow\ndetermined by: gateway:default-allow\n",
        ),
        (["--tenant", "t", "--model", "gpt-4o", "--action", "models", "--tier", "free"], 0, "allow\n"),
        (
            [
                "--tenant",
                "t",
                "--model",
                "gpt-4o",
                "--context",
                "max_tokens=5000",
                "--context",
                "pii=EMAIL,PHONE",
                "--upstream",
                "public",
            ],
            1,
            "deny\ndetermined by: rules.cedar:ceiling, rules.cedar:no-email-to-public\n",
        ),
        (["--tenant", "t", "--model", "gpt-4o", "--context", "pii=EMAIL"], 0, "allow\n"),
        (["--tenant", "t", "--model", "gpt-4o", "--default", "deny"], 1, "deny\ndetermined by: no policy"),
    ],
)
def test_check_prints_the_decision_and_the_policies_that_made_it(
    rules: Path, args: list[str], status: int, output: str
) -> None:
    result = policy("check", "--policies", str(rules), *args)
    assert (result.returncode, result.stderr) == (status, "")
    assert result.stdout.startswith(output)


def test_check_reads_policy_path_and_refuses_unknown_context(rules: Path) -> None:
    env = {"POLICY_PATH": str(rules / "rules.cedar")}
    assert policy("check", "--tenant", "t", "--model", "gpt-4o", "--tier", "free", env=env).returncode == 1
    result = policy("check", "--tenant", "t", "--model", "m", "--context", "nope=1", env=env)
    assert result.returncode == 2 and "not a context attribute" in result.stderr
    result = policy("check", "--tenant", "t", "--model", "m", "--context", "stream=maybe", env=env)
    assert result.returncode == 2 and "expected true or false" in result.stderr
    result = policy("check", "--tenant", "t", "--model", "m")
    assert result.returncode == 2 and "--policies" in result.stderr
    for bad, says in [
        (["--label", "k"], "expected NAME=VALUE"),
        (["--context", "max_tokens"], "expected NAME=VALUE"),
        (["--context", "bytes=99999999999999999999"], "expected an integer from 0 to"),
        (["--context", "hour=24"], "expected an integer from 0 to 23"),
        (["--context", "client_network=moon"], "expected one of loopback"),
    ]:
        result = policy("check", "--tenant", "t", "--model", "m", *bad, env=env)
        assert (result.returncode, result.stdout) == (2, ""), bad
        assert says in result.stderr, bad


def test_validate_for_ci_pipelines(rules: Path) -> None:
    result = policy("validate", str(rules))
    assert (result.returncode, result.stdout) == (0, "valid: 3 policies in 1 file\n")
    (rules / "broken.cedar").write_text("forbid (principal, action, resource) when { context.hours > 9 };")
    result = policy("validate", str(rules))
    assert result.returncode == 1
    assert result.stderr.startswith("invalid: broken.cedar: ")
    assert "attribute `hours` in context" in result.stderr and "Traceback" not in result.stderr


def test_validate_names_what_is_neither_a_file_nor_a_directory() -> None:
    result = policy("validate", "/dev/null")
    assert result.returncode == 1 and "neither a file nor a directory" in result.stderr


def test_schema_is_printed() -> None:
    result = policy("schema")
    assert result.returncode == 0 and "entity Tenant in [Group, Namespace]" in result.stdout
