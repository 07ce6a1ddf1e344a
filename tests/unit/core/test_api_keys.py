from __future__ import annotations

import hashlib
import hmac

import pytest

from llm_gateway.core.api_keys import KeyRing, key_digest
from llm_gateway.errors import QuotaBackendUnavailable, Unauthorized

SECRET = b"s3cret"


def test_the_digest_is_the_hmac_openssl_prints() -> None:
    assert key_digest(SECRET, b"sk-1") == hmac.new(SECRET, b"sk-1", hashlib.sha256).hexdigest()


def test_a_registered_key_names_its_tenant_and_a_storable_rate_key() -> None:
    ring = KeyRing(SECRET)
    ring.replace({key_digest(SECRET, b"sk-1"): "tenantA"})
    tenant, rate_key = ring.identify(b"sk-1")
    assert tenant == "tenantA"
    assert rate_key == "key:" + key_digest(SECRET, b"sk-1")[:16]
    assert "sk-1" not in rate_key


@pytest.mark.parametrize(
    ("key", "code"), [(None, "missing_api_key"), (b"", "missing_api_key"), (b"sk-2", "invalid_api_key")]
)
def test_anything_else_is_401(key: bytes | None, code: str) -> None:
    ring = KeyRing(SECRET)
    ring.replace({key_digest(SECRET, b"sk-1"): "tenantA"})
    with pytest.raises(Unauthorized) as caught:
        ring.identify(key)
    assert caught.value.code == code
    assert "sk-2" not in caught.value.message


def test_a_key_under_another_secret_does_not_match() -> None:
    ring = KeyRing(SECRET)
    ring.replace({key_digest(b"other", b"sk-1"): "tenantA"})
    with pytest.raises(Unauthorized):
        ring.identify(b"sk-1")


def test_before_the_map_is_read_nobody_can_be_told_apart() -> None:
    with pytest.raises(QuotaBackendUnavailable):
        KeyRing(SECRET).identify(b"sk-1")


def test_fields_that_are_not_digests_are_skipped_and_reported() -> None:
    ring = KeyRing(SECRET)
    skipped = ring.replace({"sk-raw-key-stored-by-mistake": "t", key_digest(SECRET, b"k"): "", "a" * 64: "t"})
    assert skipped == ["sk-raw-key-store", key_digest(SECRET, b"k")[:16]]
    assert len(ring) == 1
