"""The Helm chart against the real API server: install, upgrade, uninstall; the operator at work with
the chart's own ServiceAccount token; the gateway's ServiceAccount allowed nothing."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client, config

from llm_gateway.core.api_keys import KEYS_KEY
from tenantquota_operator.handlers import FINALIZER
from tenantquota_operator.uninstall import _release
from tests.chart.helm import BASE_VALUES, CHART, helm
from tests.k8s.cluster import Cluster
from tests.k8s.operator_support import (
    apply_tenantpolicy,
    apply_tenantquota,
    condition,
    eventually,
    live_entry,
    published_policy,
)
from tests.support import ManagedProcess, RedisServer, free_port

CRDS = Path(__file__).resolve().parent / "crds"
RELEASE = "rel"
FULLNAME = "rel-secure-llm-gateway"
POLICY = "forbid (principal, action, resource) when { context.stream };"


def install(cluster: Cluster, namespace: str, *values: str, action: str = "install") -> str:
    """``helm install`` (or ``upgrade``); what it printed (the NOTES)."""
    target = ["--namespace", namespace, "--kubeconfig", str(cluster.kubeconfig)]
    return helm(action, RELEASE, str(CHART), *target, *BASE_VALUES, *values).stdout


def uninstall(cluster: Cluster, namespace: str) -> None:
    """``helm uninstall`` without hooks: the pre-delete Job never runs where no pod starts (it is
    proven on the one-node cluster, tests/node)."""
    helm(
        "uninstall", RELEASE, "--namespace", namespace, "--kubeconfig", str(cluster.kubeconfig), "--no-hooks"
    )


def service_account_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as ``account`` with a token from the TokenRequest API."""
    token = cluster.kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    config: dict[str, Any] = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "admin", "user": {"token": token}}]
    path.write_text(json.dumps(config))
    return path


def can_i(cluster: Cluster, namespace: str, account: str, verb: str, resource: str) -> bool:
    result = cluster.kubectl(
        "auth", "can-i", verb, resource, "-n", namespace,
        f"--as=system:serviceaccount:{namespace}:{account}", check=False,
    )  # fmt: skip
    return result.stdout.strip() == "yes"


def test_install_upgrade_and_uninstall_are_accepted(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    notes = install(cluster, namespace)
    # The NOTES' TenantQuota command works as printed (port-forward needs running pods: not here).
    command = notes[
        notes.index("kubectl -n " + namespace + " apply -f - <<'YAML'") : notes.index("\nYAML\n") + 6
    ]
    shell = subprocess.run(
        ["bash", "-c", command],
        env={**os.environ, **cluster.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert cluster.get("tq/demo", "-n", namespace)["spec"] == {
        "tenant": "demo",
        "requests": 5,
        "windowSeconds": 60,
        "suspended": False,
    }
    deployments = cluster.get("deployments", "-n", namespace)["items"]
    assert sorted(d["metadata"]["name"] for d in deployments) == [FULLNAME, f"{FULLNAME}-operator"]
    password = cluster.get(f"secret/{FULLNAME}-redis", "-n", namespace)["data"]["redis-password"]
    hash_key = cluster.get(f"secret/{FULLNAME}-tenant-hash", "-n", namespace)["data"]["tenant-hash-key"]
    upgrade = ["--set", "gateway.replicaCount=3", "--set", "gateway.autoscaling.enabled=true"]
    install(cluster, namespace, *upgrade, action="upgrade")
    assert cluster.get(f"hpa/{FULLNAME}", "-n", namespace)["spec"]["maxReplicas"] == 10
    # Generated secrets survive upgrades (a new tenant hash key would rename every tenant's series).
    assert cluster.get(f"secret/{FULLNAME}-redis", "-n", namespace)["data"]["redis-password"] == password
    assert (
        cluster.get(f"secret/{FULLNAME}-tenant-hash", "-n", namespace)["data"]["tenant-hash-key"] == hash_key
    )
    uninstall(cluster, namespace)
    assert cluster.get("deployments", "-n", namespace)["items"] == []


def test_the_notes_commands_work_in_the_keys_auth_mode(cluster: Cluster, namespace: str) -> None:
    notes = install(cluster, namespace, "--set", "auth.mode=keys")
    secret = next(line.strip() for line in notes.splitlines() if "create secret generic demo-keys" in line)
    tenantquota = notes[
        notes.index(f"kubectl -n {namespace} apply -f - <<'YAML'") : notes.index("\nYAML\n") + 6
    ]
    shell = subprocess.run(
        ["bash", "-c", f"{secret}\n{tenantquota}"],
        env={**os.environ, **cluster.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert cluster.get("tq/demo", "-n", namespace)["spec"]["apiKeySecretRef"] == {
        "name": "demo-keys",
        "key": "api-key",
    }
    assert len(cluster.get("secret/demo-keys", "-n", namespace)["data"]["api-key"]) > 40
    service, port = re.search(r"port-forward svc/(\S+) 8080:(\d+)", notes).groups()  # type: ignore[union-attr]
    assert cluster.get(f"svc/{service}", "-n", namespace)["spec"]["ports"][0]["port"] == int(port)
    uninstall(cluster, namespace)


@pytest.mark.parametrize("auth", ["open", "keys", "keys-namespaced"])
def test_the_operator_does_its_whole_job_with_the_charts_rbac(
    cluster: Cluster, namespace: str, redis_server: RedisServer, tmp_path: Path, auth: str
) -> None:
    scope = ["--set", f"operator.watchNamespace={namespace}"] if auth == "keys-namespaced" else []
    install(cluster, namespace, "--set", f"auth.mode={auth.removesuffix('-namespaced')}", *scope)
    spec: dict[str, Any] = {"tenant": "chart-tenant", "requests": 5}
    if auth != "open":
        cluster.kubectl(
            "create", "secret", "generic", "ta-keys", "-n", namespace, "--from-literal=key=sk-chart-1"
        )
        spec["apiKeySecretRef"] = {"name": "ta-keys", "key": "key"}
    kubeconfig = service_account_kubeconfig(cluster, namespace, f"{FULLNAME}-operator", tmp_path / "operator")
    port = free_port()
    operator = ManagedProcess(
        "operator-sa",
        [sys.executable, "-m", "tenantquota_operator"],
        {
            "KUBECONFIG": str(kubeconfig),
            "REDIS_URL": redis_server.url,
            "OPERATOR_NAMESPACE": namespace,
            "CONFIGMAP_NAME": f"{FULLNAME}-tenant-quotas",
            "SERVICEMONITOR_NAME": FULLNAME,
            "USAGE_INTERVAL_SECS": "1",
            "RESYNC_INTERVAL_SECS": "1",
            "OPERATOR_METRICS_PORT": str(port),
            "KEY_HASH_SECRET": "chart-key-hash-secret",
            **({"WATCH_NAMESPACE": namespace} if scope else {}),
        },
        tmp_path,
        port,
    )
    try:
        operator.wait_ready("/metrics")
        apply_tenantquota(cluster, namespace, "ta", **spec)
        eventually(lambda: live_entry(redis_server, "chart-tenant"), what="the live-map entry")
        keys = eventually(lambda: redis_server.client().hvals(KEYS_KEY) or auth == "open", what="the key map")
        assert keys == (True if auth == "open" else [b"chart-tenant"])
        ready = eventually(lambda: condition(cluster, namespace, "ta", "Ready"), what="Ready")
        assert ready["status"] == "True"
        eventually(
            lambda: (
                "chart-tenant=5"
                in cluster.get(f"configmap/{FULLNAME}-tenant-quotas", "-n", namespace)["data"].get(
                    "TENANT_QUOTAS", ""
                )
            ),
            what="the ConfigMap",
        )
        eventually(
            lambda: cluster.get("tq/ta", "-n", namespace).get("status", {}).get("usage"),
            timeout=5,
            what="usage",
        )
        apply_tenantpolicy(cluster, namespace, "tp", POLICY)
        eventually(lambda: published_policy(redis_server, f"{namespace}/tp"), what="the published policy")
        ready = eventually(lambda: condition(cluster, namespace, "tp", "Ready", "tp"), what="Ready policy")
        assert ready["status"] == "True"
        cluster.kubectl("delete", "tq/ta", "tp/tp", "-n", namespace, "--wait=true", "--timeout=15s")
        assert live_entry(redis_server, "chart-tenant") is None
        assert published_policy(redis_server, f"{namespace}/tp") is None
        log = operator.output()
        assert "Forbidden" not in log and not re.search(r"\b403\b", log), log[-3000:]
    finally:
        operator.stop()


def test_service_accounts_are_allowed_only_what_they_use(cluster: Cluster, namespace: str) -> None:
    install(cluster, namespace)
    gateway = f"{FULLNAME}-gateway"
    for verb, resource in [
        ("get", "secrets"), ("list", "pods"), ("get", "configmaps"), ("list", "tenantquotas"),
        ("patch", "tenantquotas"), ("create", "events"), ("get", "services"), ("list", "namespaces"),
    ]:  # fmt: skip
        assert not can_i(cluster, namespace, gateway, verb, resource), (verb, resource)
    operator = f"{FULLNAME}-operator"
    for verb, resource in [
        ("list", "tenantquotas"), ("patch", "tenantquotas/status"), ("create", "configmaps"),
        ("get", "tenantpolicies"), ("list", "tenantpolicies"), ("watch", "tenantpolicies"),
        ("patch", "tenantpolicies"), ("patch", "tenantpolicies/status"),
    ]:  # fmt: skip
        assert can_i(cluster, namespace, operator, verb, resource), (verb, resource)
    for verb, resource in [
        ("get", "secrets"), ("delete", "configmaps"), ("create", "tenantquotas"), ("delete", "tenantquotas"),
        ("create", "deployments"), ("patch", "configmaps/unrelated"), ("list", "pods"),
        ("create", "tenantpolicies"), ("delete", "tenantpolicies"), ("update", "tenantpolicies"),
        ("deletecollection", "tenantpolicies"), ("update", "tenantpolicies/status"),
    ]:  # fmt: skip
        assert not can_i(cluster, namespace, operator, verb, resource), (verb, resource)
    for verb, resource in [("list", "tenantpolicies"), ("patch", "tenantpolicies")]:
        assert not can_i(cluster, namespace, gateway, verb, resource), (verb, resource)


def test_the_uninstall_hook_releases_tenantquotas_and_tenantpolicies_with_its_own_rbac(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """Step 2 of the pre-delete hook (step 1 stops pods, which never run here) as its ServiceAccount:
    the finalizer leaves both kinds, and they can then be deleted without an operator."""
    scope = ["--set", f"operator.watchNamespace={namespace}"]
    hook = helm(
        "template", RELEASE, str(CHART), "--namespace", namespace, *BASE_VALUES, *scope,
        "--show-only", "templates/operator-uninstall-hook.yaml",
    ).stdout  # fmt: skip
    rbac = [o for o in yaml.safe_load_all(hook) if o and o["kind"] != "Job"]  # the Job's pod never runs
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(rbac))
    held = {"finalizers": [FINALIZER]}
    for kind, spec in [
        ("TenantQuota", {"tenant": "held", "requests": 1}),
        ("TenantPolicy", {"policy": POLICY}),
    ]:
        body = {"apiVersion": "gateway.secure-llm.dev/v1alpha1", "kind": kind,
                "metadata": {"name": "held", **held}, "spec": spec}  # fmt: skip
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
    kubeconfig = service_account_kubeconfig(
        cluster, namespace, f"{FULLNAME}-operator-uninstall", tmp_path / "hook"
    )

    async def release() -> int:
        await config.load_kube_config(str(kubeconfig))
        async with client.ApiClient() as api:
            return await _release(
                client.CoreV1Api(api), client.CustomObjectsApi(api), namespace, None, namespace, 1
            )

    assert asyncio.run(release()) == 2
    cluster.kubectl("delete", "tq/held", "tp/held", "-n", namespace, "--wait=true", "--timeout=15s")


def test_monitoring_objects_are_accepted_by_the_prometheus_operator_crds(
    cluster: Cluster, namespace: str
) -> None:
    crds = [
        CRDS / "monitoring.coreos.com_servicemonitors.yaml",
        CRDS / "monitoring.coreos.com_prometheusrules.yaml",
    ]
    for crd in crds:
        cluster.kubectl("apply", "--server-side", "-f", str(crd))
    try:
        cluster.kubectl(
            "wait", "--for=condition=Established", "--timeout=30s",
            "crd/servicemonitors.monitoring.coreos.com", "crd/prometheusrules.monitoring.coreos.com",
        )  # fmt: skip
        monitoring = ["--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true",
                      "--set", "grafanaDashboard.enabled=true"]  # fmt: skip
        install(cluster, namespace, *monitoring)
        assert cluster.get(f"prometheusrule/{FULLNAME}", "-n", namespace)["spec"]["groups"][0]["rules"]
        assert cluster.get(f"servicemonitor/{FULLNAME}-operator", "-n", namespace)["spec"]["endpoints"]
        uninstall(cluster, namespace)
    finally:
        for crd in crds:
            cluster.kubectl("delete", "-f", str(crd), "--wait=true", "--timeout=30s")
