"""A real Prometheus server scrapes a running gateway; the counters are read back through its API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

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
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: gateway\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{gateway.port}']\n"
    )
    port = free_port()
    prometheus = ManagedProcess(
        "prometheus",
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        {},
        tmp_path,
        port,
    )
    try:
        prometheus.wait_ready("/-/ready")
        assert _query(prometheus.url, 'up{job="gateway"}') == 1
        assert _query(prometheus.url, f'requests_total{{route="{CHAT}"}}') == 5
        assert _query(prometheus.url, 'quota_block_total{reason="exceeded"}') == 2
        assert _query(prometheus.url, 'sum(gen_ai_client_token_usage_sum{gen_ai_token_type="output"})') == 6
        assert (
            _query(prometheus.url, f'http_request_duration_seconds_count{{handler="{CHAT}",status="429"}}')
            == 2
        )
    finally:
        prometheus.stop()


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
