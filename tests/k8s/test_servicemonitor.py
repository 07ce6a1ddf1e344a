"""The ServiceMonitor the operator keeps, with the Prometheus Operator's CRD installed for real.

The CRD is installed for this module only and removed afterwards: the operator tests in
test_operator.py check the behaviour without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.core.privacy import tenant_hash
from tests.k8s.cluster import Cluster
from tests.k8s.operator_support import OperatorFactory, apply_tenantquota, condition, eventually
from tests.support import free_port

SERVICEMONITOR_CRD = Path(__file__).resolve().parent / "crds" / "monitoring.coreos.com_servicemonitors.yaml"


@pytest.fixture
def servicemonitor_api(cluster: Cluster) -> Iterator[None]:
    cluster.kubectl("apply", "--server-side", "-f", str(SERVICEMONITOR_CRD))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=30s", "crd/servicemonitors.monitoring.coreos.com"
    )
    yield
    cluster.kubectl("delete", "-f", str(SERVICEMONITOR_CRD), "--wait=true", "--timeout=30s")


def known_tenants(cluster: Cluster, namespace: str) -> str | None:
    found = cluster.kubectl(
        "get", "servicemonitor/secure-llm-gateway", "-n", namespace, "-o", "json", check=False
    )
    if found.returncode != 0:
        return None
    monitor: dict[str, Any] = json.loads(found.stdout)
    [endpoint] = monitor["spec"]["endpoints"]
    return str(endpoint["metricRelabelings"][0]["regex"])


def test_the_servicemonitor_is_there_from_the_start_even_before_redis_answers(
    cluster: Cluster, namespace: str, servicemonitor_api: None, start_operator: OperatorFactory
) -> None:
    """The chart starts the operator beside Redis: it must not wait for a TenantQuota to scrape."""
    start_operator(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    regex = eventually(lambda: known_tenants(cluster, namespace), timeout=10, what="the ServiceMonitor")
    assert not re.fullmatch(regex, "team-a")
    monitor = cluster.get("servicemonitor/secure-llm-gateway", "-n", namespace)
    assert monitor["spec"]["endpoints"][0]["port"] == "http"


def test_the_servicemonitor_follows_the_tenants(
    cluster: Cluster, namespace: str, servicemonitor_api: None, start_operator: OperatorFactory
) -> None:
    start_operator()
    # Scraping does not wait for the first TenantQuota: the ServiceMonitor is there from the start.
    regex = eventually(lambda: known_tenants(cluster, namespace), timeout=5, what="the ServiceMonitor")
    assert not re.fullmatch(regex, "team-a")
    apply_tenantquota(cluster, namespace, "a", tenant="team-a", requests=3)
    regex = eventually(
        lambda: (r := known_tenants(cluster, namespace)) and re.fullmatch(r, "team-a") and r,
        what="team-a known",
    )
    assert re.fullmatch(regex, "team-a") and re.fullmatch(regex, tenant_hash("team-a"))
    assert not re.fullmatch(regex, "team-b")
    monitor = cluster.get("servicemonitor/secure-llm-gateway", "-n", namespace)
    assert monitor["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "secure-llm-gateway"}}
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    ready = eventually(lambda: condition(cluster, namespace, "a", "ServiceMonitor"), what="the condition")
    assert ready["status"] == "True"

    apply_tenantquota(cluster, namespace, "b", tenant="team-b", requests=3)
    eventually(lambda: re.fullmatch(known_tenants(cluster, namespace) or "", "team-b"), what="team-b known")
    cluster.kubectl("delete", "tq/a", "-n", namespace, "--wait=true", "--timeout=10s")
    eventually(
        lambda: not re.fullmatch(known_tenants(cluster, namespace) or "", "team-a"), what="team-a gone"
    )
