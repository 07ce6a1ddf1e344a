"""Fixtures for the Kubernetes tests: one control plane per session, the project's CRDs installed."""

from __future__ import annotations

import itertools
import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.cluster import Cluster, start_cluster
from tests.k8s.operator_support import OperatorFactory
from tests.support import ManagedProcess, RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "k8s" / "crd"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The API-server-only cluster; with ``K8S_TEST_CLUSTER=node``, the one-node cluster with real
    pods (tests/node) behind the same interface; with ``E2E_KUBECONFIG``, that cluster."""
    if os.environ.get("K8S_TEST_CLUSTER") == "node":
        from tests.node.cluster import start_node_cluster  # the node tier's prerequisites only then

        running: Cluster = start_node_cluster(tmp_path_factory.mktemp("node"))
    else:
        running = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        running.kubectl("apply", "--server-side", "-f", str(CRD_DIR))
        names = [f"crd/{path.name.removesuffix('.yaml')}" for path in sorted(CRD_DIR.glob("*.yaml"))]
        running.kubectl("wait", "--for=condition=Established", "--timeout=30s", *names)
        yield running
    finally:
        running.stop()


# Namespace names are unique by construction: this run's token (an E2E_KUBECONFIG cluster keeps the
# namespaces of earlier runs) and a counter, never a random suffix that parametrized cases can share.
_RUN = uuid.uuid4().hex[:6]
_namespaces = itertools.count(1)


def namespace_name(test_name: str) -> str:
    """``t-<test name, cut to 40>-<run token>-<n>``: at most 63 characters, a valid DNS label."""
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower().replace("_", "-"))[:40].strip("-")
    return f"t-{slug}-{_RUN}-{next(_namespaces)}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test (never deleted: without a controller-manager it would stay Terminating)."""
    name = namespace_name(request.node.name)
    cluster.kubectl("create", "namespace", name)
    return name


@pytest.fixture
def start_operator(
    cluster: Cluster, namespace: str, redis_server: RedisServer, tmp_path: Any
) -> Iterator[OperatorFactory]:
    started: list[ManagedProcess] = []

    def start(**env: str) -> ManagedProcess:
        port = free_port()
        settings = {
            **cluster.env,
            "REDIS_URL": redis_server.url,
            "OPERATOR_NAMESPACE": namespace,
            "WATCH_NAMESPACE": namespace,
            "USAGE_INTERVAL_SECS": "1",
            "RESYNC_INTERVAL_SECS": "1",
            "OPERATOR_METRICS_PORT": str(port),
            **env,
        }
        process = ManagedProcess(
            "operator", [sys.executable, "-m", "tenantquota_operator"], settings, tmp_path, port
        )
        started.append(process)
        process.wait_ready("/metrics")
        return process

    yield start
    for process in started:
        process.stop()
