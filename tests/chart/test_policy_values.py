"""``gateway.policies`` values rendered by the real Helm CLI into the files the gateway reads at
``POLICY_PATH``, validated by the gateway's own loader."""

from __future__ import annotations

import json
from pathlib import Path

from llm_gateway.policy_files import load_policy_documents
from tests.chart.helm import CHART, helm, render
from tests.chart.test_routing_values import by_kind

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def test_policy_values_become_files_the_gateway_accepts(tmp_path: Path) -> None:
    policies = {path.stem: path.read_text() for path in EXAMPLES.glob("*.cedar")}
    objects = render(
        "--set-json", f"gateway.policies={json.dumps(policies)}", "--set", "gateway.policyDefault=deny"
    )
    files = by_kind(objects, "ConfigMap", "rel-secure-llm-gateway-policies")["data"]
    assert set(files) == {f"{name}.cedar" for name in policies}
    settings = by_kind(objects, "ConfigMap", "rel-secure-llm-gateway-gateway")["data"]
    assert (settings["POLICY_PATH"], settings["POLICY_DEFAULT"]) == (
        "/etc/secure-llm-gateway-policies",
        "deny",
    )
    pod = by_kind(objects, "Deployment", "rel-secure-llm-gateway")["spec"]["template"]
    [gateway] = pod["spec"]["containers"]
    mount = {"name": "policies", "mountPath": "/etc/secure-llm-gateway-policies", "readOnly": True}
    assert mount in gateway["volumeMounts"]
    assert "checksum/policies" in pod["metadata"]["annotations"]
    for name, source in files.items():
        (tmp_path / name).write_text(source)
    assert [d.text for d in load_policy_documents(tmp_path)] == [files[n] for n in sorted(files)]


def test_without_policies_no_file_is_mounted_and_allow_is_the_default() -> None:
    objects = render()
    settings = by_kind(objects, "ConfigMap", "rel-secure-llm-gateway-gateway")["data"]
    assert "POLICY_PATH" not in settings and settings["POLICY_DEFAULT"] == "allow"
    assert not [o for o in objects if o["metadata"]["name"] == "rel-secure-llm-gateway-policies"]


def test_the_schema_refuses_what_the_chart_sets_itself_and_bad_names() -> None:
    for args in (
        ["--set", "gateway.settings.POLICY_PATH=/x"],
        ["--set", "gateway.policyDefault=maybe"],
        ["--set-json", 'gateway.policies={"../etc": "permit (principal, action, resource);"}'],
    ):
        result = helm("template", "rel", str(CHART), *args, check=False)
        assert result.returncode != 0, args
