"""The chart's alerts and dashboard query only what the gateway and the operator really export."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tenantquota_operator.metrics import OperatorMetrics
from tests.chart.helm import CHART, render
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, chat_body
from tests.support import ManagedProcess

MONITORING = [
    "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true",
    "--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
]  # fmt: skip
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
# Label lists (`by (...)`), label matchers, ranges and strings: what is left names metrics or functions.
NOT_METRICS = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\""
)
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool"}
MATCHED = re.compile(rf"({NAME})\s*\{{([^}}]*)\}}")
EQUALS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"')  # not =~ or !=
# A metric name, or a name with the label values its equality matchers ask for.
Selector = tuple[str, frozenset[tuple[str, str]]]


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


def selectors(query: str) -> set[Selector]:
    """The series ``query`` reads: every metric name it names, and each name with equality matchers."""
    names = re.findall(rf"\b{NAME}\b(?!\s*\()", NOT_METRICS.sub(" ", query))  # not a function's name
    found: set[Selector] = {(name, frozenset()) for name in names if name not in KEYWORDS}
    found |= {(name, frozenset(EQUALS.findall(matchers))) for name, matchers in MATCHED.findall(query)}
    return found


def shown(selector: Selector) -> str:
    name, labels = selector
    return name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels)) + "}" if labels else "")


def exported(text: str) -> list[tuple[str, dict[str, str]]]:
    return [(s.name, s.labels) for family in text_string_to_metric_families(text) for s in family.samples]


def test_selectors_find_metric_names_and_label_values_only() -> None:
    query = 'max by (tenant) (a_used / (b > 0)) > 0.9 and on() sum(rate(c_total{r="x",s=~"5.."}[5m])) > 0'
    assert {shown(s) for s in selectors(query)} == {"a_used", "b", "c_total", 'c_total{r="x"}'}


def test_every_query_uses_exported_metrics(gateway_factory: GatewayFactory, mock: ManagedProcess) -> None:
    gateway = gateway_factory(TENANT_TOKEN_QUOTAS="dash=100000")  # the token budget series too
    httpx.post(gateway.url + CHAT, json=chat_body(stream=True), headers={"X-Api-Key": "dash"})
    httpx.post(gateway.url + CHAT, json=chat_body("mail a@example.com"), headers={"X-Api-Key": "dash"})
    series = exported(httpx.get(gateway.url + "/metrics").text)
    series += exported(generate_latest(OperatorMetrics(port=0).registry).decode())
    queries = dashboard_queries() + [
        str(rule["expr"])
        for group in rule_groups()
        for rule in group["rules"]  # type: ignore[attr-defined]
    ]
    assert len(queries) >= 15
    used = set().union(*(selectors(query) for query in queries))
    assert len(used) >= 20, queries
    missing = {
        shown((name, labels))
        for name, labels in used
        if not any(name == n and labels <= set(values.items()) for n, values in series)
    }
    assert not missing, missing


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups()}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    records = [
        {"record": f"dashboard:query{n}", "expr": query} for n, query in enumerate(dashboard_queries())
    ]
    rules = tmp_path / "dashboard.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def replica(tenant: str, pod: int, active: bool, **used_of_budget: tuple[int, int]) -> list[dict[str, str]]:
    """promtool input series: what one replica exports for ``tenant``: ``kind=(used, budget)`` per limit,
    and requests (a steady rate when ``active``, else none in the test's 10 minutes)."""
    labels = f'tenant="{tenant}",pod="{pod}"'
    found = [
        {
            "series": f'gateway_tenant_requests_total{{{labels},code="200"}}',
            "values": "0+6x10" if active else "6x10",
        }
    ]
    for kind, (used, budget) in used_of_budget.items():
        typed = f'{labels},gen_ai_token_type="{kind}"'
        found.append({"series": f"gateway_tenant_token_budget{{{typed}}}", "values": f"{budget}x10"})
        found.append({"series": f"gateway_tenant_token_budget_used{{{typed}}}", "values": f"{used}x10"})
    return found


def test_the_token_budget_alert_fires_for_an_active_tenant_over_90_percent_for_5_minutes(
    tmp_path: Path,
) -> None:
    [rule] = [
        rule
        for group in rule_groups()
        for rule in group["rules"]  # type: ignore[attr-defined]
        if rule["alert"] == "LLMGatewayTenantNearTokenBudget"
    ]
    firing = {
        "exp_labels": {"severity": "info", "tenant": "near", "gen_ai_token_type": "output"},
        "exp_annotations": {
            "summary": "Tenant near has used over 90 % of its output token budget for 5 minutes",
            "description": rule["annotations"]["description"],
        },
    }
    case = {
        "interval": "1m",
        "input_series": [
            # One replica saw 95 % of the output budget; the other, 10 %.
            *replica("near", 0, True, output=(950, 1000), input=(500, 1000)),
            *replica("near", 1, True, output=(100, 1000)),
            *replica("at-90", 0, True, total=(900, 1000)),  # exactly 90 %: not over
            *replica("blocked", 0, True, total=(5, 0)),  # a budget of 0 blocks its tenant on purpose
            *replica("idle", 0, False, total=(990, 1000)),  # its last window, long over
            # A replica idle for this tenant keeps an old window; the one serving it is at 10 %.
            *replica("moved", 0, False, total=(990, 1000)),
            *replica("moved", 1, True, total=(100, 1000)),
        ],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": rule["alert"], "exp_alerts": []},  # pending, not firing
            {"eval_time": "6m", "alertname": rule["alert"], "exp_alerts": [firing]},
        ],
    }
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "t", "rules": [rule]}]}))
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "tests": [case]}))
    result = subprocess.run(
        ["promtool", "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_file_is_the_one_shipped() -> None:
    assert (
        json.loads((CHART / "dashboards" / "secure-llm-gateway.json").read_text())["uid"]
        == "secure-llm-gateway"
    )
