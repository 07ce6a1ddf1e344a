"""The TenantQuota CRD against a real kube-apiserver: each fixture gives the exact server-side result."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.k8s.cluster import Cluster
from tests.k8s.conftest import ROOT


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


EVERYTHING = {
    "tenant": "sk-proj_abc.123",
    "requests": 0,
    "windowSeconds": 3600,
    "rateLimit": {"rps": 2, "burst": 4},
    "allowedModels": ["gpt-4o", "gpt-4o-mini"],
    "suspended": True,
    "apiKeySecretRef": {"name": "tenant-a", "key": "api-key"},
}

GOOD = {
    "minimal, with defaults": (
        {"tenant": "tenantA", "requests": 5},
        {"tenant": "tenantA", "requests": 5, "windowSeconds": 60, "suspended": False},
    ),
    "everything": (EVERYTHING, EVERYTHING),  # stored exactly as sent
}

BAD = {
    "no tenant": ({"requests": 5}, "spec.tenant: Required value"),
    "no requests": ({"tenant": "a"}, "spec.requests: Required value"),
    "negative requests": (
        {"tenant": "a", "requests": -1},
        "spec.requests: Invalid value: -1: spec.requests in body should be greater than or equal to 0",
    ),
    "zero window": (
        {"tenant": "a", "requests": 1, "windowSeconds": 0},
        "spec.windowSeconds: Invalid value: 0: "
        "spec.windowSeconds in body should be greater than or equal to 1",
    ),
    "tenant with a comma": (
        {"tenant": "a,b", "requests": 1},
        'spec.tenant: Invalid value: "a,b": spec.tenant in body should match',
    ),
    "tenant with '='": (
        {"tenant": "a=b", "requests": 1},
        'spec.tenant: Invalid value: "a=b": spec.tenant in body should match',
    ),
    "empty tenant": (
        {"tenant": "", "requests": 1},
        'spec.tenant: Invalid value: "": spec.tenant in body should be at least 1 chars long',
    ),
    "burst below rps": (
        {"tenant": "a", "requests": 1, "rateLimit": {"rps": 5, "burst": 2}},
        "spec.rateLimit.burst: Invalid value: spec.rateLimit.burst must be at least spec.rateLimit.rps",
    ),
    "rate limit without burst": (
        {"tenant": "a", "requests": 1, "rateLimit": {"rps": 5}},
        "spec.rateLimit.burst: Required value",
    ),
    "zero rps": (
        {"tenant": "a", "requests": 1, "rateLimit": {"rps": 0, "burst": 1}},
        "spec.rateLimit.rps: Invalid value: 0: "
        "spec.rateLimit.rps in body should be greater than or equal to 1",
    ),
    "duplicate models": (
        {"tenant": "a", "requests": 1, "allowedModels": ["m", "m"]},
        'spec.allowedModels[1]: Duplicate value: "m"',
    ),
    "empty model list": (
        {"tenant": "a", "requests": 1, "allowedModels": []},
        "spec.allowedModels: Invalid value: 0: spec.allowedModels in body should have at least 1 items",
    ),
    "suspended not a boolean": (
        {"tenant": "a", "requests": 1, "suspended": "yes"},
        'spec.suspended: Invalid value: "string": spec.suspended in body must be of type boolean',
    ),
    "unknown field": (
        {"tenant": "a", "requests": 1, "quota": 5},
        'strict decoding error: unknown field "spec.quota"',
    ),
    "secret ref without key": (
        {"tenant": "a", "requests": 1, "apiKeySecretRef": {"name": "s"}},
        "spec.apiKeySecretRef.key: Required value",
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
    assert message in output


def test_the_tenant_of_a_tenantquota_cannot_change(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest({"tenant": "first", "requests": 1}))
    changed = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=manifest({"tenant": "second", "requests": 1}), check=False
    )
    assert changed.returncode != 0
    assert "spec.tenant is immutable; create a new TenantQuota for another tenant" in changed.stderr
    # Other fields may change.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest({"tenant": "first", "requests": 9}))
    assert cluster.get("tq/tq", "-n", namespace)["spec"]["requests"] == 9


def test_printer_columns_and_short_name(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest({"tenant": "cols", "requests": 5}))
    table = cluster.kubectl("get", "tq", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "TENANT", "REQUESTS", "WINDOW", "USED", "READY", "AGE"]
    assert table[1].split()[:4] == ["tq", "cols", "5", "60"]


def test_the_readme_example_is_accepted(cluster: Cluster, namespace: str) -> None:
    example = (ROOT / "k8s" / "examples" / "tenantquota.yaml").read_text()
    accepted, output = create(cluster, namespace, example)
    assert accepted, output
    assert json.loads(output)["spec"]["tenant"] == "tenantA"
