"""A real Prometheus server scrapes a running gateway; the counters are read back through its API."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from llm_gateway.core.privacy import tenant_hash
from tenantquota_operator.kube import tenant_relabelings
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, chat_body
from tests.support import ManagedProcess, free_port


def test_prometheus_scrapes_the_gateway_and_answers_queries(
    tmp_path: Path, gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(TENANT_QUOTAS="capped=0")
    for _ in range(3):
        assert httpx.post(gateway.url + CHAT, json=chat_body("one two", model="mock:echo")).status_code == 200
    for _ in range(2):
        refused = httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "capped"})
        assert refused.status_code == 429
    with prometheus_scraping(tmp_path, gateway.port) as prometheus:
        assert _query(prometheus.url, 'up{job="gateway"}') == 1
        assert _query(prometheus.url, f'requests_total{{route="{CHAT}"}}') == 5
        assert _query(prometheus.url, 'quota_block_total{reason="exceeded"}') == 2
        assert _query(prometheus.url, 'sum(gen_ai_client_token_usage_sum{gen_ai_token_type="output"})') == 6
        assert (
            _query(prometheus.url, f'http_request_duration_seconds_count{{handler="{CHAT}",status="429"}}')
            == 2
        )


def test_the_operators_relabelings_keep_declared_tenants_only(
    tmp_path: Path, gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    hashed = gateway_factory()
    named = gateway_factory(TENANT_LABEL="name", TENANT_QUOTAS="team-a=100")
    for gateway in (hashed, named):
        for key in ("team-a", "team-a", "sk-unknown-1", "sk-unknown-2"):
            assert (
                httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": key}).status_code
                == 200
            )
    relabel = [_snake_case(rule) for rule in tenant_relabelings(["team-a"])]
    series = "gateway_tenant_requests_total"
    with prometheus_scraping(tmp_path / "hashed", hashed.port, relabel) as prometheus:
        assert _query(prometheus.url, f'sum({series}{{tenant="{tenant_hash("team-a")}"}})') == 2
        assert _query(prometheus.url, f"count(count by (tenant) ({series}))") == 1  # the unknown ones dropped
        assert _query(prometheus.url, 'count({__tmp_tenant_known=~".+"}) or vector(0)') == 0
        assert _query(prometheus.url, f'requests_total{{route="{CHAT}"}}') == 4  # tenant-less series kept
    with prometheus_scraping(tmp_path / "named", named.port, relabel) as prometheus:
        assert _query(prometheus.url, f'sum({series}{{tenant="team-a"}})') == 2
        assert _query(prometheus.url, f'sum({series}{{tenant="other"}})') == 2  # the gateway's own sum


@contextmanager
def prometheus_scraping(
    tmp_path: Path, port: int, metric_relabel_configs: list[dict[str, Any]] | None = None
) -> Iterator[ManagedProcess]:
    """A real Prometheus scraping ``127.0.0.1:port`` every second (job ``gateway``)."""
    job: dict[str, Any] = {"job_name": "gateway", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
    if metric_relabel_configs:
        job["metric_relabel_configs"] = metric_relabel_configs
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": [job]}))
    listen = free_port()
    prometheus = ManagedProcess(
        "prometheus",
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{listen}",
        ],
        {},
        tmp_path,
        listen,
    )
    try:
        prometheus.wait_ready("/-/ready")
        yield prometheus
    finally:
        prometheus.stop()


def _snake_case(rule: dict[str, Any]) -> dict[str, Any]:
    """A ServiceMonitor relabeling (camelCase) as Prometheus's own configuration spells it."""
    return {re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower(): value for key, value in rule.items()}


def _query(base_url: str, promql: str, deadline_s: float = 20.0) -> float:
    """The single value of ``promql``, once Prometheus has scraped enough to give one."""
    deadline = time.monotonic() + deadline_s
    result: list[Any] = []
    while time.monotonic() < deadline:
        body = httpx.get(base_url + "/api/v1/query", params={"query": promql}).json()
        assert body["status"] == "success", body
        result = body["data"]["result"]
        if result:
            return float(result[0]["value"][1])
        time.sleep(0.25)
    raise AssertionError(f"no result for {promql} within {deadline_s} s")
