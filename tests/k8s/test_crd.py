"""The TenantQuota and TenantPolicy CRDs against a real kube-apiserver: each fixture gives the exact
server-side result."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tenantquota_operator.policies import publication
from tests.k8s.cluster import Cluster
from tests.k8s.conftest import ROOT
from tests.k8s.operator_support import table


def manifest(spec: dict[str, Any], name: str = "tq", kind: str = "TenantQuota") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "gateway.secure-llm.dev/v1alpha1",
            "kind": kind,
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
    "tier": "free_2026.q1",
    "groups": ["research", "eu-staff", "G" * 63],
    "tokens": {
        "perWindow": 100000,
        "input": 80000,
        "output": 0,
        "windowSeconds": 2678400,
        "maxOutputTokens": 1,
    },
}

GOOD = {
    "minimal, with defaults": (
        {"tenant": "tenantA", "requests": 5},
        {"tenant": "tenantA", "requests": 5, "windowSeconds": 60, "suspended": False},
    ),
    "everything": (EVERYTHING, EVERYTHING),  # stored exactly as sent
    "tokens: one limit, no defaults": (
        {"tenant": "t", "requests": 5, "tokens": {"output": 500}},
        {"tenant": "t", "requests": 5, "windowSeconds": 60, "suspended": False, "tokens": {"output": 500}},
    ),
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
    "tokens without a limit": (
        {"tenant": "a", "requests": 1, "tokens": {"windowSeconds": 60, "maxOutputTokens": 100}},
        "spec.tokens: Invalid value: spec.tokens must set at least one of perWindow, input and output",
    ),
    "empty tokens": (
        {"tenant": "a", "requests": 1, "tokens": {}},
        "spec.tokens must set at least one of perWindow, input and output",
    ),
    "negative tokens per window": (
        {"tenant": "a", "requests": 1, "tokens": {"perWindow": -1}},
        "spec.tokens.perWindow: Invalid value: -1: "
        "spec.tokens.perWindow in body should be greater than or equal to 0",
    ),
    "negative output tokens": (
        {"tenant": "a", "requests": 1, "tokens": {"output": -5}},
        "spec.tokens.output: Invalid value: -5: "
        "spec.tokens.output in body should be greater than or equal to 0",
    ),
    "zero token window": (
        {"tenant": "a", "requests": 1, "tokens": {"perWindow": 9, "windowSeconds": 0}},
        "spec.tokens.windowSeconds: Invalid value: 0: "
        "spec.tokens.windowSeconds in body should be greater than or equal to 1",
    ),
    "token window over 31 days": (
        {"tenant": "a", "requests": 1, "tokens": {"perWindow": 9, "windowSeconds": 2678401}},
        "spec.tokens.windowSeconds: Invalid value: 2678401: "
        "spec.tokens.windowSeconds in body should be less than or equal to 2678400",
    ),
    "zero max output tokens": (
        {"tenant": "a", "requests": 1, "tokens": {"perWindow": 9, "maxOutputTokens": 0}},
        "spec.tokens.maxOutputTokens: Invalid value: 0: "
        "spec.tokens.maxOutputTokens in body should be greater than or equal to 1",
    ),
    "tokens per window as a string": (
        {"tenant": "a", "requests": 1, "tokens": {"perWindow": "1000"}},
        'spec.tokens.perWindow: Invalid value: "string": '
        "spec.tokens.perWindow in body must be of type integer",
    ),
    "fractional input tokens": (
        {"tenant": "a", "requests": 1, "tokens": {"input": 1.5}},
        'spec.tokens.input: Invalid value: "float64": spec.tokens.input in body must be of type int64',
    ),
    "tokens as a number": (
        {"tenant": "a", "requests": 1, "tokens": 1000},
        'spec.tokens: Invalid value: "integer": spec.tokens in body must be of type object',
    ),
    "unknown token field": (
        {"tenant": "a", "requests": 1, "tokens": {"total": 5}},
        'strict decoding error: unknown field "spec.tokens.total"',
    ),
    "empty tier": (
        {"tenant": "a", "requests": 1, "tier": ""},
        'spec.tier: Invalid value: "": spec.tier in body should match',
    ),
    "tier with a space": (
        {"tenant": "a", "requests": 1, "tier": "gold tier"},
        'spec.tier: Invalid value: "gold tier": spec.tier in body should match',
    ),
    "tier of 64 characters": (
        {"tenant": "a", "requests": 1, "tier": "t" * 64},
        "spec.tier: Too long: may not be more than 63 bytes",
    ),
    "groups as a string": (
        {"tenant": "a", "requests": 1, "groups": "research"},
        'spec.groups: Invalid value: "string": spec.groups in body must be of type array',
    ),
    "duplicate groups": (
        {"tenant": "a", "requests": 1, "groups": ["g", "g"]},
        'spec.groups[1]: Duplicate value: "g"',
    ),
    "33 groups": (
        {"tenant": "a", "requests": 1, "groups": [f"g{i}" for i in range(33)]},
        "spec.groups: Too many: 33: must have at most 32 items",
    ),
    "group ending in a dot": (
        {"tenant": "a", "requests": 1, "groups": ["eu."]},
        'spec.groups[0]: Invalid value: "eu.": spec.groups[0] in body should match',
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
    budget = manifest({"tenant": "budget", "requests": 5, "tokens": {"perWindow": 1000}}, name="tq-budget")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=budget)
    rows = table(cluster.kubectl("get", "tq", "-n", namespace).stdout)
    assert list(rows[0]) == [
        "NAME", "TENANT", "REQUESTS", "WINDOW", "USED", "TOKENS", "TOKENS USED", "READY", "AGE"
    ]  # fmt: skip
    assert list(rows[0].values())[:7] == ["tq", "cols", "5", "60", "", "", ""]
    assert list(rows[1].values())[:7] == ["tq-budget", "budget", "5", "60", "", "1000", ""]


def test_the_readme_example_is_accepted(cluster: Cluster, namespace: str) -> None:
    example = (ROOT / "k8s" / "examples" / "tenantquota.yaml").read_text()
    accepted, output = create(cluster, namespace, example)
    assert accepted, output
    spec = json.loads(output)["spec"]
    assert spec["tenant"] == "tenantA"
    assert spec["tokens"] == {
        "perWindow": 200000,
        "output": 50000,
        "windowSeconds": 86400,
        "maxOutputTokens": 1024,
    }


FORBID_STREAMS = "forbid (principal, action, resource) when { context.stream };"

GOOD_POLICIES = {
    "a policy": {"policy": FORBID_STREAMS},
    "with a description": {"policy": FORBID_STREAMS, "description": "d" * 1024},
    "the longest policy": {"policy": "/" * 65536},
    # Cedar is the operator's to judge (it reports it in status): the server checks only the shape.
    "Cedar that does not parse": {"policy": "permit("},
}

BAD_POLICIES = {
    "no policy": ({"description": "x"}, "spec.policy: Required value"),
    "empty policy": (
        {"policy": ""},
        'spec.policy: Invalid value: "": spec.policy in body should be at least 1 chars long',
    ),
    "policy over 64 KiB": (
        {"policy": "/" * 65537},
        "spec.policy: Too long: may not be more than 65536 bytes",
    ),
    "policy as a list": (
        {"policy": [FORBID_STREAMS]},
        'spec.policy: Invalid value: "array": spec.policy in body must be of type string',
    ),
    "description over 1024 characters": (
        {"policy": FORBID_STREAMS, "description": "d" * 1025},
        "spec.description: Too long: may not be more than 1024 bytes",
    ),
    "unknown field": (
        {"policy": FORBID_STREAMS, "policies": []},
        'strict decoding error: unknown field "spec.policies"',
    ),
}


@pytest.mark.parametrize("spec", GOOD_POLICIES.values(), ids=GOOD_POLICIES.keys())
def test_good_tenantpolicies_are_stored_as_sent(
    cluster: Cluster, namespace: str, spec: dict[str, Any]
) -> None:
    accepted, output = create(cluster, namespace, manifest(spec, "tp", "TenantPolicy"))
    assert accepted, output
    assert json.loads(output)["spec"] == spec


@pytest.mark.parametrize(("spec", "message"), BAD_POLICIES.values(), ids=BAD_POLICIES.keys())
def test_bad_tenantpolicies_are_refused_with_the_servers_message(
    cluster: Cluster, namespace: str, spec: dict[str, Any], message: str
) -> None:
    accepted, output = create(cluster, namespace, manifest(spec, "tp", "TenantPolicy"))
    assert not accepted
    assert message in output


def test_tenantpolicy_printer_columns_and_short_name(cluster: Cluster, namespace: str) -> None:
    policy = manifest({"policy": FORBID_STREAMS}, "no-streams", "TenantPolicy")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=policy)
    [row] = table(cluster.kubectl("get", "tp", "-n", namespace).stdout)
    assert list(row) == ["NAME", "READY", "REASON", "AGE"]
    assert list(row.values())[:3] == ["no-streams", "", ""]  # no operator here: no status


def test_the_tenantpolicy_example_is_accepted_and_valid_cedar(cluster: Cluster, namespace: str) -> None:
    accepted, output = create(
        cluster, namespace, (ROOT / "k8s" / "examples" / "tenantpolicy.yaml").read_text()
    )
    assert accepted, output
    published = publication(namespace, "model-rules", json.loads(output)["spec"])  # as the operator does
    assert published.policy_ids == tuple(
        f"{namespace}/model-rules:{name}" for name in ("free-tier-models", "interns-no-tools", "long-outputs")
    )
