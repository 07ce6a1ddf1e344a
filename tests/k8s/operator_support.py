"""Helpers for the operator tests: manifests, polling, reading Redis and status."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import yaml

from tests.integration.chat import CHAT, chat_body
from tests.k8s.cluster import Cluster
from tests.support import ManagedProcess, RedisServer

OperatorFactory = Callable[..., ManagedProcess]


def tenantquota(name: str, **spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "gateway.secure-llm.dev/v1alpha1",
            "kind": "TenantQuota",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def apply_tenantquota(cluster: Cluster, namespace: str, name: str, **spec: Any) -> None:
    """``kubectl apply`` a TenantQuota ``name`` with ``spec`` in ``namespace``."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=tenantquota(name, **spec))


def tenantpolicy(name: str, policy: str, description: str | None = None) -> str:
    spec = {"policy": policy} if description is None else {"policy": policy, "description": description}
    return yaml.safe_dump(
        {
            "apiVersion": "gateway.secure-llm.dev/v1alpha1",
            "kind": "TenantPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def apply_tenantpolicy(
    cluster: Cluster, namespace: str, name: str, policy: str, description: str | None = None
) -> None:
    """``kubectl apply`` a TenantPolicy ``name`` with ``policy`` (Cedar) in ``namespace``."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=tenantpolicy(name, policy, description))


def published_policy(redis_server: RedisServer, source: str) -> dict[str, Any] | None:
    """The policy map's value for ``source`` (``namespace/name``), parsed; None when absent."""
    raw = redis_server.client().hget("policy_map", source)
    return None if raw is None else dict(orjson.loads(raw))


def revision(redis_server: RedisServer) -> int:
    """The live map's revision (``quota_map:rev``), which every change bumps."""
    return int(redis_server.client().get("quota_map:rev") or 0)


def eventually(check: Callable[[], Any], timeout: float = 2.0, what: str = "condition") -> Any:
    """``check()``'s first truthy result within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s (last: {result!r})")
        time.sleep(0.05)


def live_entry(redis_server: RedisServer, tenant: str) -> dict[str, Any] | None:
    raw = redis_server.client().hget("quota_map", tenant)
    return None if raw is None else dict(orjson.loads(raw))


def limit_seen(gateway: ManagedProcess, tenant: str) -> str:
    response = httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": tenant}, timeout=5)
    return response.headers.get("x-ratelimit-limit-requests", str(response.status_code))


def condition(
    cluster: Cluster, namespace: str, name: str, kind: str, resource: str = "tq"
) -> dict[str, Any] | None:
    """The condition of type ``kind`` of ``resource/name`` (a TenantQuota unless said), if any."""
    status = cluster.get(f"{resource}/{name}", "-n", namespace).get("status", {})
    return next((c for c in status.get("conditions", []) if c["type"] == kind), None)


def table(text: str) -> list[dict[str, str]]:
    """``kubectl get``'s table as rows by column, empty cells included (the header marks the columns)."""
    header, *lines = text.splitlines()
    starts = [(match.start(), match.group()) for match in re.finditer(r"\S+(?: \S+)*", header)]
    ends = [start for start, _ in starts[1:]] + [None]
    return [
        {name: line[start:end].strip() for (start, name), end in zip(starts, ends, strict=True)}
        for line in lines
    ]
