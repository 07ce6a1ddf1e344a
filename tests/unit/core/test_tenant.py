from __future__ import annotations

import pytest

from llm_gateway.core.tenant import tenant_of
from llm_gateway.errors import InvalidRequest, Unauthorized


def test_key_is_the_tenant() -> None:
    assert tenant_of(b"tenantA", allow_anonymous=False) == "tenantA"


def test_missing_key_is_anonymous_or_refused() -> None:
    assert tenant_of(None, allow_anonymous=True) == "anonymous"
    assert tenant_of(b"", allow_anonymous=True) == "anonymous"
    with pytest.raises(Unauthorized):
        tenant_of(None, allow_anonymous=False)


@pytest.mark.parametrize("key", [b"k" * 257, b"tab\there", "cl\u00e9".encode(), b"nl\n"])
def test_keys_that_cannot_be_a_redis_key_segment_are_refused(key: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        tenant_of(key, allow_anonymous=True)
    assert key.decode("latin-1") not in caught.value.message
