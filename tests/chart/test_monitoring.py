"""The chart's alerts and dashboard query only what the gateway and the operator really export."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import yaml
from prometheus_client import generate_latest

from tenantquota_operator.metrics import OperatorMetrics
from tests.chart.helm import CHART, render
from tests.integration.chat import CHAT, chat_body
from tests.support import ManagedProcess

MONITORING = [
    "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true",
    "--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
]  # fmt: skip
# A metric selector: a name followed by its label matchers or a range.
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]")


def rule_groups() -> list[dict[str, object]]:
    [rule] = [o for o in render(*MONITORING) if o["kind"] == "PrometheusRule"]
    return list(rule["spec"]["groups"])


def dashboard_queries() -> list[str]:
    [config] = [
        o
        for o in render(*MONITORING)
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")
    ]
    dashboard = json.loads(config["data"]["secure-llm-gateway.json"])
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def exported_names(text: str) -> set[str]:
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def test_every_query_uses_exported_metrics(gateway: ManagedProcess, mock: ManagedProcess) -> None:
    httpx.post(gateway.url + CHAT, json=chat_body(stream=True), headers={"X-Api-Key": "dash"})
    httpx.post(gateway.url + CHAT, json=chat_body("mail a@example.com"), headers={"X-Api-Key": "dash"})
    exported = exported_names(httpx.get(gateway.url + "/metrics").text)
    exported |= exported_names(generate_latest(OperatorMetrics(port=0).registry).decode())
    queries = dashboard_queries() + [
        str(rule["expr"])
        for group in rule_groups()
        for rule in group["rules"]  # type: ignore[attr-defined]
    ]
    assert len(queries) >= 15
    used = {name for query in queries for name in SELECTOR.findall(query)}
    assert used, queries
    assert used <= exported, used - exported


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups()}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_the_dashboard_file_is_the_one_shipped() -> None:
    assert (
        json.loads((CHART / "dashboards" / "secure-llm-gateway.json").read_text())["uid"]
        == "secure-llm-gateway"
    )
