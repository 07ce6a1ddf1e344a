"""Fixtures for the Kubernetes tests: one control plane per session, the TenantQuota CRD installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s.cluster import Cluster, start_cluster

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "k8s" / "crd" / "tenantquotas.gateway.secure-llm.dev.yaml"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        running.kubectl("apply", "--server-side", "-f", str(CRD))
        running.kubectl(
            "wait", "--for=condition=Established", "--timeout=30s", "crd/tenantquotas.gateway.secure-llm.dev"
        )
        yield running
    finally:
        running.stop()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test (never deleted: without a controller-manager it would stay Terminating)."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].rstrip("-") + f"-{id(request) % 10000}"
    cluster.kubectl("create", "namespace", name)
    return name
