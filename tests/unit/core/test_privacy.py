from __future__ import annotations

from llm_gateway.core.privacy import storage_id, tenant_hash


def test_standard_keeps_ids_as_they_are() -> None:
    assert storage_id("standard", b"k")("tenantA") == "tenantA"


def test_strict_stores_the_keyed_pseudonym_metrics_show() -> None:
    pseudonym = storage_id("strict", b"k")
    assert pseudonym("tenantA") == tenant_hash("tenantA", b"k")
    assert pseudonym("tenantA") != tenant_hash("tenantA", b"other") != tenant_hash("tenantA")
    assert len(pseudonym("tenantA")) == 12
