from __future__ import annotations

import re
from typing import Any

import pytest

from llm_gateway.core.privacy import tenant_hash
from llm_gateway.core.quota_map import TenantEntry, TokenBudget, decode_entry, encode_entry
from tenantquota_operator.claims import Claim, InvalidSpec, entry_from_spec, env_form, winner
from tenantquota_operator.kube import tenant_relabelings

ONE = TenantEntry(requests=1)


def claim(created: str, name: str, entry: TenantEntry | None = ONE) -> Claim:
    return Claim(created, "ns", name, "t", entry)


def test_the_oldest_valid_claim_wins_and_ties_break_by_name() -> None:
    older, newer = claim("2026-01-01T00:00:00Z", "b"), claim("2026-01-02T00:00:00Z", "a")
    assert winner([newer, older]) == older
    same_time = claim("2026-01-01T00:00:00Z", "a")
    assert winner([older, same_time]) == same_time
    assert winner([claim("2025-01-01T00:00:00Z", "invalid", None), newer]) == newer
    assert winner([]) is None


def test_a_spec_becomes_the_live_map_entry() -> None:
    spec = {
        "tenant": "team-a",
        "requests": 5,
        "windowSeconds": 3600,
        "rateLimit": {"rps": 2, "burst": 4},
        "allowedModels": ["gpt-4o"],
        "suspended": True,
    }
    assert entry_from_spec(spec, "ns", {}) == TenantEntry(
        requests=5,
        window_secs=3600,
        rps=2.0,
        burst=4,
        allowed_models=frozenset({"gpt-4o"}),
        suspended=True,
        namespace="ns",
    )
    assert entry_from_spec({"tenant": "t", "requests": 0}, "ns", {}) == TenantEntry(
        requests=0, window_secs=60, namespace="ns"
    )


def test_tier_groups_namespace_and_labels_become_what_policies_see_of_the_tenant() -> None:
    spec = {"tenant": "t", "requests": 5, "tier": "free", "groups": ["research", "eu.staff"]}
    entry = entry_from_spec(spec, "team-a", {"team": "search", "app.kubernetes.io/part-of": "x"})
    assert (entry.tier, entry.groups, entry.namespace) == (
        "free",
        frozenset({"research", "eu.staff"}),
        "team-a",
    )
    assert entry.labels == (("app.kubernetes.io/part-of", "x"), ("team", "search"))  # sorted: one encoding
    assert decode_entry(encode_entry(entry)) == entry  # what the gateways read back
    plain = entry_from_spec({"tenant": "t", "requests": 5}, "team-a", {})
    assert (plain.tier, plain.groups, plain.labels) == (None, frozenset(), ())  # the gateway's default tier


def test_a_token_budget_becomes_the_live_map_entrys_tokens() -> None:
    spec = {
        "tenant": "t",
        "requests": 5,
        "tokens": {
            "perWindow": 1000,
            "input": 800,
            "output": 0,
            "windowSeconds": 3600,
            "maxOutputTokens": 256,
        },
    }
    entry = entry_from_spec(spec, "ns", {})
    assert entry.tokens == TokenBudget(
        total=1000, input=800, output=0, window_secs=3600, max_output_tokens=256
    )
    assert decode_entry(encode_entry(entry)) == entry  # what the gateways read back
    # Unset window and reservation stay unset: the gateway's own settings apply.
    only_output = entry_from_spec({"tenant": "t", "requests": 5, "tokens": {"output": 50}}, "ns", {})
    assert only_output.tokens == TokenBudget(output=50)
    assert b'"tokens":{"output":50},' in encode_entry(only_output)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"requests": 1}, "spec.tenant"),
        ({"tenant": "a,b", "requests": 1}, "spec.tenant"),
        ({"tenant": "a"}, "spec.requests is required"),
        ({"tenant": "a", "requests": -1}, "spec.requests must be an integer of at least 0"),
        ({"tenant": "a", "requests": 1, "windowSeconds": 0}, "spec.windowSeconds"),
        ({"tenant": "a", "requests": 1, "rateLimit": {"rps": 3}}, "needs both rps and burst"),
        ({"tenant": "a", "requests": 1, "rateLimit": {"rps": 3, "burst": 2}}, "burst must be at least"),
        ({"tenant": "a", "requests": 1, "allowedModels": []}, "spec.allowedModels"),
        ({"tenant": "a", "requests": 1, "suspended": "no"}, "spec.suspended"),
        ({"tenant": "a", "requests": 1, "tokens": 5}, "spec.tokens must be an object"),
        ({"tenant": "a", "requests": 1, "tokens": {}}, "spec.tokens must set at least one of perWindow"),
        (
            {"tenant": "a", "requests": 1, "tokens": {"windowSeconds": 60, "maxOutputTokens": 9}},
            "spec.tokens must set at least one of perWindow, input and output",
        ),
        ({"tenant": "a", "requests": 1, "tokens": {"perWindow": -1}}, "spec.tokens.perWindow"),
        ({"tenant": "a", "requests": 1, "tokens": {"input": "9"}}, "spec.tokens.input"),
        ({"tenant": "a", "requests": 1, "tokens": {"output": True}}, "spec.tokens.output"),
        (
            {"tenant": "a", "requests": 1, "tokens": {"input": 9, "windowSeconds": 0}},
            "spec.tokens.windowSeconds",
        ),
        (
            {"tenant": "a", "requests": 1, "tokens": {"input": 9, "maxOutputTokens": 0}},
            "spec.tokens.maxOutputTokens must be an integer of at least 1",
        ),
        ({"tenant": "a", "requests": 1, "tier": ""}, "spec.tier must be 1-63 letters"),
        ({"tenant": "a", "requests": 1, "tier": "gold tier"}, "spec.tier"),
        ({"tenant": "a", "requests": 1, "tier": "t" * 64}, "spec.tier"),
        ({"tenant": "a", "requests": 1, "tier": 3}, "spec.tier"),
        ({"tenant": "a", "requests": 1, "groups": "research"}, "spec.groups must be a list"),
        ({"tenant": "a", "requests": 1, "groups": ["-x"]}, "spec.groups"),
        ({"tenant": "a", "requests": 1, "groups": [f"g{i}" for i in range(33)]}, "at most 32"),
    ],
)
def test_specs_the_gateway_cannot_apply_are_refused_with_the_field(
    spec: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidSpec, match=problem):
        entry_from_spec(spec, "ns", {})


def test_env_form_is_the_tenant_quotas_setting_sorted_with_suspended_tenants_at_zero() -> None:
    entries = {"tenantB": TenantEntry(requests=8), "tenantA": TenantEntry(requests=5, suspended=True)}
    assert env_form(entries) == "tenantA=0,tenantB=8"  # a suspended tenant is blocked
    assert env_form({}) == ""


def test_relabelings_know_the_keyed_pseudonyms_of_declared_tenants() -> None:
    regex = tenant_relabelings(["team-a"], b"k")[0]["regex"]
    assert re.fullmatch(regex, tenant_hash("team-a", b"k"))
    assert not re.fullmatch(regex, tenant_hash("team-a"))
    assert re.fullmatch(regex, "team-a") and re.fullmatch(regex, "other")


def test_key_refs_and_secret_values_become_key_map_digests() -> None:
    from llm_gateway.core.api_keys import key_digest
    from tenantquota_operator.claims import InvalidSpec, KeyRef, digests_of, key_ref_of

    assert key_ref_of({"apiKeySecretRef": {"name": "s", "key": "k"}}, "ns") == KeyRef("ns", "s", "k")
    assert key_ref_of({}, "ns") is None
    with pytest.raises(InvalidSpec):
        key_ref_of({"apiKeySecretRef": {"name": "s"}}, "ns")
    assert digests_of(b"sk-1\n\n  sk-2 \n", b"x") == {key_digest(b"x", b"sk-1"), key_digest(b"x", b"sk-2")}
    for bad in (b"", b"\n \n", b"sk with\x01control", b"k" * 257):
        with pytest.raises(InvalidSpec):
            digests_of(bad, b"x")
