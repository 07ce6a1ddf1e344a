"""The TenantQuota CRD against a real kube-apiserver: each fixture gives the exact server-side result."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.k8s.cluster import Cluster


def manifest(spec: dict[str, Any], name: str = "tq") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "gateway.secure-llm.dev/v1alpha1",
            "kind": "TenantQuota",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def create(cluster: Cluster, namespace: str, text: str) -> tuple[bool, str]:
    """Server-side dry-run create: (accepted, the object as stored or the server's message)."""
    result = cluster.kubectl(
        "create", "-n", namespace, "--dry-run=server", "-o", "json", "-f", "-", input=text, check=False
    )
    return result.returncode == 0, result.stdout if result.returncode == 0 else result.stderr.strip()


GOOD = {
    "minimal, with defaults": (
        {"tenant": "tenantA", "requests": 5},
        {"tenant": "tenantA", "requests": 5, "windowSeconds": 60, "suspended": False},
    ),
    "everything": (
        {
            "tenant": "sk-proj_abc.123",
            "requests": 0,
            "windowSeconds": 3600,
            "rateLimit": {"rps": 2, "burst": 4},
            "allowedModels": ["gpt-4o", "gpt-4o-mini"],
            "suspended": True,
            "apiKeySecretRef": {"name": "tenant-a", "key": "api-key"},
        },
        {
            "tenant": "sk-proj_abc.123",
            "requests": 0,
            "windowSeconds": 3600,
            "rateLimit": {"rps": 2, "burst": 4},
            "allowedModels": ["gpt-4o", "gpt-4o-mini"],
            "suspended": True,
            "apiKeySecretRef": {"name": "tenant-a", "key": "api-key"},
        },
    ),
}

BAD = {
    "no tenant": ({"requests": 5}, "PLACEHOLDER"),
    "no requests": ({"tenant": "a"}, "PLACEHOLDER"),
    "negative requests": ({"tenant": "a", "requests": -1}, "PLACEHOLDER"),
    "zero window": ({"tenant": "a", "requests": 1, "windowSeconds": 0}, "PLACEHOLDER"),
    "tenant with a comma": ({"tenant": "a,b", "requests": 1}, "PLACEHOLDER"),
    "tenant with '='": ({"tenant": "a=b", "requests": 1}, "PLACEHOLDER"),
    "empty tenant": ({"tenant": "", "requests": 1}, "PLACEHOLDER"),
    "burst below rps": ({"tenant": "a", "requests": 1, "rateLimit": {"rps": 5, "burst": 2}}, "PLACEHOLDER"),
    "rate limit without burst": ({"tenant": "a", "requests": 1, "rateLimit": {"rps": 5}}, "PLACEHOLDER"),
    "zero rps": ({"tenant": "a", "requests": 1, "rateLimit": {"rps": 0, "burst": 1}}, "PLACEHOLDER"),
    "duplicate models": ({"tenant": "a", "requests": 1, "allowedModels": ["m", "m"]}, "PLACEHOLDER"),
    "empty model list": ({"tenant": "a", "requests": 1, "allowedModels": []}, "PLACEHOLDER"),
    "suspended not a boolean": ({"tenant": "a", "requests": 1, "suspended": "yes"}, "PLACEHOLDER"),
    "unknown field": ({"tenant": "a", "requests": 1, "quota": 5}, "PLACEHOLDER"),
    "secret ref without key": (
        {"tenant": "a", "requests": 1, "apiKeySecretRef": {"name": "s"}},
        "PLACEHOLDER",
    ),
}


@pytest.mark.parametrize(("spec", "stored"), GOOD.values(), ids=GOOD.keys())
def test_good_fixtures_are_accepted_with_defaults(
    cluster: Cluster, namespace: str, spec: dict[str, Any], stored: dict[str, Any]
) -> None:
    accepted, output = create(cluster, namespace, manifest(spec))
    assert accepted, output
    assert json.loads(output)["spec"] == stored


@pytest.mark.parametrize(("spec", "message"), BAD.values(), ids=BAD.keys())
def test_bad_fixtures_are_refused_with_the_servers_message(
    cluster: Cluster, namespace: str, spec: dict[str, Any], message: str
) -> None:
    accepted, output = create(cluster, namespace, manifest(spec))
    assert not accepted
    print(repr(output))
    assert message in output
