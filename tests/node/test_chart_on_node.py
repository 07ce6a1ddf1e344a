"""The chart with real pods: install, serve through the Service, quotas on both replicas, helm test,
upgrade, a pod deleted under load, uninstall. One release, the tests in the order a user goes."""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.k8s.operator_support import apply_tenantquota, condition, eventually
from tests.node.cluster import NodeCluster
from tests.node.release import Release

NAMESPACE = "slg"
MESSAGES = [{"role": "user", "content": "hello from a pod"}]


@pytest.fixture(scope="module")
def release(node_cluster: NodeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    installed = Release(node_cluster, "slg", NAMESPACE, tmp_path_factory.mktemp("release"))
    node_cluster.kubectl("create", "namespace", NAMESPACE)
    try:
        installed.install_mock()
        installed.install()
        yield installed
    finally:
        # test_uninstall_... normally did this; after a failure, leave the cluster clean for the rest.
        for name in (installed.name, "openaimock"):
            installed.helm("uninstall", name, "--wait", check=False)
        node_cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def client(base_url: str, tenant: str = "tenant-node") -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key=tenant, max_retries=0, timeout=30)


def chat_both_ways(base_url: str) -> None:
    """A non-streamed and a streamed chat completion through ``base_url`` with the official SDK."""
    answer = client(base_url).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.total_tokens > 0
    stream = client(base_url).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text, chunks
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_every_pod_is_ready(release: Release) -> None:
    pods = release.get("pods")["items"]
    components = sorted(
        pod["metadata"]["labels"].get(
            "app.kubernetes.io/component", pod["metadata"]["labels"].get("app.kubernetes.io/name")
        )
        for pod in pods
    )
    assert components == ["gateway", "gateway", "openaimock", "operator", "redis"], components
    for pod in pods:
        ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", pod["metadata"]["name"]
    readiness = httpx.get(
        f"http://{release.cluster.relay(release.service_ip() + ':8080')}/readyz", timeout=10
    )
    assert readiness.status_code == 200, readiness.text
    assert readiness.json()["checks"]["upstream"] == "ok"
    assert readiness.json()["checks"]["redis"] == "ok"


def test_chat_through_port_forward(release: Release) -> None:
    with release.port_forward(f"svc/{release.fullname}") as url:
        chat_both_ways(url)


def test_chat_through_the_cluster_ip(release: Release) -> None:
    chat_both_ways("http://" + release.cluster.relay(release.service_ip() + ":8080"))


def test_a_tenantquota_is_enforced_by_both_replicas(release: Release) -> None:
    quota = 4
    apply_tenantquota(release.cluster, NAMESPACE, "node-quota", tenant="tenant-quota", requests=quota)
    eventually(
        lambda: (condition(release.cluster, NAMESPACE, "node-quota", "Ready") or {}).get("status") == "True",
        timeout=30,
        what="TenantQuota Ready",
    )
    pods = release.gateway_pods()
    assert len(pods) == 2
    statuses: dict[str, list[int]] = {pod: [] for pod in pods}
    with release.port_forward(f"pod/{pods[0]}") as first, release.port_forward(f"pod/{pods[1]}") as second:
        # Alternate between the replicas: the quota is one count in the shared Redis.
        for i in range(quota + 2):
            pod, url = (pods[0], first) if i % 2 == 0 else (pods[1], second)
            answer = httpx.post(
                f"{url}/v1/chat/completions",
                headers={"Authorization": "Bearer tenant-quota"},
                json={"model": "gpt-4o-mini", "messages": MESSAGES},
                timeout=30,
            )
            statuses[pod].append(answer.status_code)
            if answer.status_code == 429:
                assert answer.json()["error"]["code"] == "quota_exceeded", answer.text
    assert sorted(code for codes in statuses.values() for code in codes) == [200] * quota + [429] * 2, (
        statuses
    )
    assert all(codes[-1] == 429 for codes in statuses.values()), statuses


def test_helm_test_passes(release: Release) -> None:
    result = release.helm("test", release.name, "--timeout=120s")
    assert "Phase:          Succeeded" in result.stdout, result.stdout


def test_upgrade_keeps_secrets_and_rolls_the_pods(release: Release) -> None:
    password = digest(release.secret("redis", "redis-password"))
    hash_key = digest(release.secret("tenant-hash", "tenant-hash-key"))
    before = set(release.gateway_pods())
    release.install("--set", "gateway.settings.LOG_LEVEL=debug", action="upgrade")
    # Compared by digest: a failure never prints the secrets.
    assert digest(release.secret("redis", "redis-password")) == password
    assert digest(release.secret("tenant-hash", "tenant-hash-key")) == hash_key
    eventually(
        lambda: len(release.gateway_pods()) == 2 and not before & set(release.gateway_pods()), 120, "rolled"
    )
    chat_both_ways("http://" + release.cluster.relay(release.service_ip() + ":8080"))


def test_a_pod_evicted_under_stream_load_is_covered_by_the_other_replica(release: Release) -> None:
    budget = release.get("pdb", release.fullname)
    assert budget["status"]["currentHealthy"] == 2 and budget["status"]["disruptionsAllowed"] == 1, budget[
        "status"
    ]
    url = "http://" + release.cluster.relay(release.service_ip() + ":8080")
    outcomes: list[str] = []
    started: list[None] = []  # one entry per stream begun; minus len(outcomes): those in flight
    stop = threading.Event()

    def stream_forever() -> None:
        sdk = client(url, "tenant-load")
        while not stop.is_set():
            started.append(None)
            try:
                chunks = list(
                    sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
                )
                outcomes.append("ok" if chunks else "empty")
            except openai.OpenAIError as error:
                outcomes.append(f"{type(error).__name__}: {error}")

    workers = [threading.Thread(target=stream_forever) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(2)
        first, second = release.gateway_pods()
        streaming = len(started) - len(outcomes)  # a stream takes seconds (the mock's pace): mid-way
        evict(release, first)
        # The budget now allows no second disruption: the API refuses to evict the last replica.
        refused = evict(release, second, check=False)
        assert refused.returncode != 0 and "disruption budget" in refused.stderr, refused.stderr
        eventually(
            lambda: first not in release.gateway_pods() and len(release.gateway_pods()) == 2, 120, "replaced"
        )
        time.sleep(2)
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
    failures = [outcome for outcome in outcomes if outcome != "ok"]
    assert streaming >= 1 and len(outcomes) >= 8, (streaming, len(outcomes))
    assert not failures, failures[:5]


def evict(release: Release, pod: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Evict ``pod`` through the Eviction API (what ``kubectl drain`` does; it honours PDBs)."""
    eviction = (
        '{"apiVersion": "policy/v1", "kind": "Eviction", '
        f'"metadata": {{"name": "{pod}", "namespace": "{NAMESPACE}"}}}}'
    )
    return release.cluster.kubectl(
        "create",
        "--raw",
        f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}/eviction",
        "-f",
        "-",
        input=eviction,
        check=check,
    )


def test_uninstall_with_tenantquotas_left_and_the_namespace_goes(release: Release) -> None:
    assert release.get("tenantquotas")["items"], "the quota test left a TenantQuota to clean up"
    release.helm("uninstall", release.name, "--wait", "--timeout=120s")
    release.cluster.kubectl("delete", "namespace", NAMESPACE, "--timeout=120s", timeout=200)
    gone = release.cluster.kubectl("get", "namespace", NAMESPACE, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stdout
