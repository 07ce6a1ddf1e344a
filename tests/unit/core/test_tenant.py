from __future__ import annotations

import pytest

from llm_gateway.core.tenant import api_key_of, tenant_of
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


@pytest.mark.parametrize(
    ("x_api_key", "authorization", "expected"),
    [
        (b"tenantA", None, b"tenantA"),
        (None, b"Bearer sk-client", b"sk-client"),
        (None, b"bearer   sk-client ", b"sk-client"),
        (b"tenantA", b"Bearer sk-client", b"tenantA"),  # X-Api-Key wins
        (None, b"Basic dXNlcjpwYXNz", None),  # not a key for the gateway
        (None, b"Bearer", None),
        (None, b"Bearer   ", None),
        (None, None, None),
    ],
)
def test_the_key_comes_from_x_api_key_or_a_bearer_token(
    x_api_key: bytes | None, authorization: bytes | None, expected: bytes | None
) -> None:
    assert api_key_of(x_api_key, authorization) == expected
