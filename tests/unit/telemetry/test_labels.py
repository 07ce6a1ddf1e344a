from __future__ import annotations

import hashlib
import hmac

from llm_gateway.core.privacy import tenant_hash
from llm_gateway.telemetry.labels import OTHER, BoundedLabel, TenantNames


def test_bounded_label_keeps_the_first_distinct_values_then_folds_the_rest() -> None:
    label = BoundedLabel(limit=2)
    assert [label(v) for v in ["a", "b", "a", "c", "b", "d"]] == ["a", "b", "a", OTHER, "b", OTHER]


def test_bounded_label_with_an_allow_list_folds_everything_else() -> None:
    label = BoundedLabel(["gpt-4o", "gpt-4o-mini"], limit=50)
    assert [label(v) for v in ["gpt-4o", "x", "gpt-4o-mini", "y"]] == ["gpt-4o", OTHER, "gpt-4o-mini", OTHER]


def test_bounded_label_never_exceeds_its_bound() -> None:
    label = BoundedLabel(limit=10)
    assert len({label(f"model-{i}") for i in range(10_000)}) == 11


def test_tenant_hash_is_the_sha256_prefix_operators_can_compute() -> None:
    assert tenant_hash("demo") == hashlib.sha256(b"demo").hexdigest()[:12]


def test_hash_mode_never_shows_a_key_and_bounds_the_labels() -> None:
    names = TenantNames("hash", lambda tenant: True, max_labels=3)
    assert names.attribute("sk-secret") == tenant_hash("sk-secret")
    assert names.attribute("anonymous") == "anonymous"
    labels = {names.label(f"key-{i}") for i in range(1000)}
    assert labels == {tenant_hash("key-0"), tenant_hash("key-1"), tenant_hash("key-2"), OTHER}


def test_name_mode_names_declared_tenants_only() -> None:
    declared = {"team-a"}
    names = TenantNames("name", declared.__contains__, max_labels=100)
    assert names.attribute("team-a") == "team-a"
    assert names.attribute("sk-undeclared") == tenant_hash("sk-undeclared")
    assert names.label("team-a") == "team-a"
    assert names.label("sk-undeclared") == OTHER
    assert names.label("anonymous") == "anonymous"


def test_a_hash_key_makes_the_pseudonym_a_keyed_hmac() -> None:
    keyed = tenant_hash("demo", b"secret-1")
    assert keyed == hmac.new(b"secret-1", b"demo", hashlib.sha256).hexdigest()[:12]
    assert keyed != tenant_hash("demo") and keyed != tenant_hash("demo", b"secret-2")  # rotation changes it
    names = TenantNames("hash", lambda tenant: False, max_labels=10, hash_key=b"secret-1")
    assert names.attribute("demo") == names.label("demo") == keyed
