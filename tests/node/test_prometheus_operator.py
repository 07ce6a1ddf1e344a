"""The Prometheus Operator, for real: it turns the ServiceMonitors and the PrometheusRule of a release
into a running Prometheus that scrapes both gateway pods and loads the alerts.

The operator and its config reloader are built from the Go module proxy (``make tools``), with the
CRDs and the example RBAC of the same release; so is Prometheus (Debian's package has no Kubernetes
service discovery, which every configuration the operator writes relies on).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.k8s.operator_support import eventually
from tests.node.cluster import NodeCluster, images_script
from tests.node.release import DEV_VALUES, Release
from tests.support import prepared_tool

NAMESPACE = "monitored"
OPERATOR_NAMESPACE = "default"  # where the example RBAC binds the operator's ServiceAccount


def operator_files() -> Path:
    return Path(prepared_tool("operator")).parent


def operator_manifests() -> str:
    """The release's example RBAC and Deployment, run from the local images (never pulled)."""
    documents: list[dict[str, Any]] = []
    for path in sorted((operator_files() / "rbac" / "prometheus-operator").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if document["kind"] == "ServiceMonitor":
            continue  # the operator's own metrics are not what this test is about
        if document["kind"] == "Deployment":
            container = document["spec"]["template"]["spec"]["containers"][0]
            container["image"] = images_script("ref", "prometheus-operator")
            container["imagePullPolicy"] = "Never"
            container["args"] = [
                f"--prometheus-config-reloader={images_script('ref', 'prometheus-config-reloader')}",
            ]
        documents.append(document)
    for name in ("prometheus-service-account", "prometheus-cluster-role", "prometheus-cluster-role-binding"):
        document = yaml.safe_load((operator_files() / "rbac" / "prometheus" / f"{name}.yaml").read_text())
        if document["kind"] == "ServiceAccount":
            document["metadata"]["namespace"] = NAMESPACE
        if document["kind"] == "ClusterRoleBinding":
            document["subjects"][0]["namespace"] = NAMESPACE
        documents.append(document)
    return yaml.safe_dump_all(documents)


def prometheus_resource() -> str:
    image = images_script("ref", "prometheus")
    return yaml.safe_dump(
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "Prometheus",
            "metadata": {"name": "gateway", "namespace": NAMESPACE},
            "spec": {
                "version": image.rpartition(":")[2],  # the operator writes flags and config for it
                "image": image,
                "imagePullPolicy": "Never",
                "replicas": 1,
                "serviceAccountName": "prometheus",
                "scrapeInterval": "2s",
                "evaluationInterval": "2s",
                # Everything in the release's namespace: the chart's ServiceMonitor, the one our
                # operator keeps, the PrometheusRule.
                "serviceMonitorSelector": {},
                "ruleSelector": {},
                "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
            },
        }
    )


@pytest.fixture(scope="module")
def monitored(node_cluster: NodeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    node_cluster.import_images("prometheus", "prometheus-operator", "prometheus-config-reloader")
    node_cluster.kubectl("apply", "--server-side", "-f", str(operator_files() / "crds"))
    for crd in ("prometheuses", "servicemonitors", "prometheusrules"):
        node_cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}.monitoring.coreos.com")
    node_cluster.kubectl("create", "namespace", NAMESPACE)
    release = Release(node_cluster, "mon", NAMESPACE, tmp_path_factory.mktemp("monitored"))
    try:  # from here on, whatever happens, the shared cluster is left clean for the other modules
        node_cluster.kubectl("apply", "-f", "-", input=operator_manifests())
        node_cluster.kubectl(
            "-n", OPERATOR_NAMESPACE, "rollout", "status", "deployment/prometheus-operator", "--timeout=120s",
            timeout=200,
        )  # fmt: skip
        release.install_mock()
        release.install(
            "-f", str(DEV_VALUES), "--set", "serviceMonitor.enabled=true",
            "--set", "serviceMonitor.interval=2s", "--set", "prometheusRule.enabled=true",
        )  # fmt: skip
        release.kubectl("apply", "-f", "-", input=prometheus_resource())
        try:
            eventually(
                lambda: release.get("pods", "-l", "app.kubernetes.io/name=prometheus")["items"], 60, "pod"
            )
            release.kubectl("wait", "--for=condition=Ready", "pod", "-l", "app.kubernetes.io/name=prometheus",
                            "--timeout=180s")  # fmt: skip
        except AssertionError as error:
            raise AssertionError(f"{error}\n{node_cluster.diagnose(NAMESPACE)}") from None
        yield release
    finally:
        for name in (release.name, "openaimock"):
            release.helm("uninstall", name, "--wait", check=False)
        release.kubectl("delete", "prometheus", "gateway", "--wait=true", check=False)
        node_cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        node_cluster.kubectl("delete", "-f", "-", "--wait=false", input=operator_manifests(), check=False)


@pytest.fixture(scope="module")
def prometheus(monitored: Release) -> str:
    """Prometheus's HTTP API from the host: its pod IP through the cluster's relay."""
    pod = monitored.get("pods", "-l", "app.kubernetes.io/name=prometheus")["items"][0]
    return "http://" + monitored.cluster.relay(pod["status"]["podIP"] + ":9090")


def query(prometheus: str, path: str, **params: str) -> Any:
    answer = httpx.get(prometheus + path, params=params, timeout=10)
    answer.raise_for_status()
    return answer.json()["data"]


def targets(prometheus: str) -> str:
    """One line per active target (pod, health, last error): what a failure message needs."""
    return "\n".join(
        f"{t['labels'].get('pod')} {t['scrapeUrl']} {t['health']} {t['lastError']}"
        for t in query(prometheus, "/api/v1/targets", state="active")["activeTargets"]
    )


def test_prometheus_scrapes_both_gateway_pods(monitored: Release, prometheus: str) -> None:
    pods = set(monitored.gateway_pods())
    assert len(pods) == 2

    def both_up() -> bool:
        series = query(prometheus, "/api/v1/query", query='up{namespace="monitored"} == 1')["result"]
        return pods <= {s["metric"].get("pod") for s in series}

    try:
        # A ServiceMonitor written after Prometheus started reaches it through a Secret volume,
        # which the kubelet refreshes on its sync period (tests/node/config/kubelet.yaml).
        eventually(both_up, 180, "up == 1 for both gateway pods")
    except AssertionError as error:
        diagnosis = monitored.cluster.diagnose(NAMESPACE)
        raise AssertionError(f"{error}\ntargets:\n{targets(prometheus)}\n{diagnosis}") from None
    url = "http://" + monitored.cluster.relay(monitored.service_ip() + ":8080")
    for _ in range(6):
        chat = httpx.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": "Bearer tenant-scraped"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert chat.status_code == 200, chat.text

    def counted() -> float:
        result = query(
            prometheus,
            "/api/v1/query",
            query='sum(requests_total{namespace="monitored",route="/v1/chat/completions"})',
        )["result"]
        return float(result[0]["value"][1]) if result else 0.0

    assert eventually(lambda: counted() >= 6, 60, "requests_total after traffic")


def test_prometheus_loads_the_charts_alerts(prometheus: str) -> None:
    def alert_names() -> set[str]:
        groups = query(prometheus, "/api/v1/rules", type="alert")["groups"]
        return {rule["name"] for group in groups for rule in group["rules"]}

    names = eventually(alert_names, 180, "rules loaded")
    assert {"LLMGatewayHigh5xxRate", "LLMGatewayLoadShedding", "TenantQuotaOperatorSyncStale"} <= names, names
