"""The plain manifests: rendered from the chart (never stale), applied with `kubectl apply -k k8s/`."""

from __future__ import annotations

import subprocess
import sys

from tests.k8s.cluster import Cluster
from tests.k8s.conftest import ROOT

NAMESPACE = "secure-llm-gateway"


def test_the_rendered_base_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render_manifests.py"), "--check"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_base_has_no_helm_hook_or_test() -> None:
    """kubectl would run them at once: the pre-delete Job stops the operator."""
    base = (ROOT / "k8s" / "base" / "secure-llm-gateway.yaml").read_text()
    assert "helm.sh/hook" not in base and "uninstall" not in base and "test-readyz" not in base


def test_apply_k_installs_the_product_and_the_samples_apply(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-k", str(ROOT / "k8s"))
    deployments = cluster.get("deployments", "-n", NAMESPACE)["items"]
    assert sorted(d["metadata"]["name"] for d in deployments) == [NAMESPACE, f"{NAMESPACE}-operator"]
    binding = cluster.get(f"clusterrolebinding/{NAMESPACE}-{NAMESPACE}-operator")
    assert binding["subjects"][0]["namespace"] == NAMESPACE
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(ROOT / "k8s" / "samples"))
    rows = cluster.kubectl("get", "tq", "-n", NAMESPACE, "--no-headers").stdout.splitlines()
    assert sorted(row.split()[1:3] for row in rows) == [["tenantA", "5"], ["tenantB", "8"]]
