"""AUTH_MODE=keys end to end: a TenantQuota's apiKeySecretRef Secret → the key map → the gateway admits."""

from __future__ import annotations

import httpx

from llm_gateway.core.api_keys import KEYS_KEY, key_digest
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, chat_body
from tests.k8s.cluster import Cluster
from tests.k8s.operator_support import OperatorFactory, apply_tenantquota, condition, eventually
from tests.support import ManagedProcess, RedisServer

SECRET = "key-hash-secret-k8s"
FIRST, SECOND = "sk-delta-first-0001", "sk-delta-second-0002"


def put_secret(cluster: Cluster, namespace: str, value: str) -> None:
    manifest = cluster.kubectl(
        "create", "secret", "generic", "delta-keys", "-n", namespace,
        f"--from-literal=api-key={value}", "--dry-run=client", "-o", "yaml",
    ).stdout  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=manifest)


def key_map(redis_server: RedisServer) -> dict[str, str]:
    raw = redis_server.client().hgetall(KEYS_KEY)
    return {field.decode(): tenant.decode() for field, tenant in raw.items()}


def digest(key: str) -> str:
    return key_digest(SECRET.encode(), key.encode())


def status_for(gateway: ManagedProcess, key: str) -> int:
    return httpx.post(
        gateway.url + CHAT, json=chat_body(), headers={"Authorization": f"Bearer {key}"}
    ).status_code


def test_keys_from_the_referenced_secret_reach_the_gateway_rotate_and_go(
    cluster: Cluster,
    namespace: str,
    redis_server: RedisServer,
    start_operator: OperatorFactory,
    gateway_factory: GatewayFactory,
) -> None:
    start_operator(KEY_HASH_SECRET=SECRET)
    gateway = gateway_factory(AUTH_MODE="keys", KEY_HASH_SECRET=SECRET, REDIS_URL=redis_server.url)
    ref = {"name": "delta-keys", "key": "api-key"}

    apply_tenantquota(cluster, namespace, "delta", tenant="delta", requests=50, apiKeySecretRef=ref)
    missing = eventually(lambda: condition(cluster, namespace, "delta", "Ready"), what="a Ready condition")
    assert (missing["status"], missing["reason"]) == ("False", "SecretNotFound")

    put_secret(cluster, namespace, FIRST)
    eventually(
        lambda: key_map(redis_server) == {digest(FIRST): "delta"}, timeout=20, what="the key in the map"
    )
    eventually(lambda: status_for(gateway, FIRST) == 200, what="the gateway admitting the key")
    assert status_for(gateway, SECOND) == 401
    ready = eventually(
        lambda: (c := condition(cluster, namespace, "delta", "Ready")) and c["status"] == "True" and c,
        what="Ready",
    )
    assert ready["message"] == "in the live quota map with 1 API key"

    put_secret(cluster, namespace, f"{FIRST}\n{SECOND}\n")  # rotation: both valid for a while
    eventually(lambda: len(key_map(redis_server)) == 2, timeout=5, what="both keys")
    eventually(lambda: status_for(gateway, SECOND) == 200, what="the new key admitted")
    put_secret(cluster, namespace, SECOND)
    eventually(lambda: key_map(redis_server) == {digest(SECOND): "delta"}, timeout=5, what="the old key gone")
    eventually(lambda: status_for(gateway, FIRST) == 401, what="the old key refused")
    assert not any(SECOND in field for field in key_map(redis_server))  # only HMACs are stored

    cluster.kubectl("delete", "tq/delta", "-n", namespace, "--wait=true", "--timeout=10s")
    eventually(lambda: key_map(redis_server) == {}, what="the keys removed with the TenantQuota")
    eventually(lambda: status_for(gateway, SECOND) == 401, what="the key refused")
