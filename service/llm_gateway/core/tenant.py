"""Who a request is for (pure): the tenant named by the request's API key.

The key comes from ``X-Api-Key`` (the replaced gateway's header) or, when that is absent, from
``Authorization: Bearer <key>`` (what OpenAI SDKs send, so an SDK pointed at the gateway works
unchanged). Neither header ever reaches the upstream.
"""

from __future__ import annotations

from llm_gateway.errors import InvalidRequest, Unauthorized

__all__ = ["ANONYMOUS", "MAX_KEY_LENGTH", "api_key_of", "is_usable_key", "tenant_of"]

ANONYMOUS = "anonymous"
MAX_KEY_LENGTH = 256


def api_key_of(x_api_key: bytes | None, authorization: bytes | None) -> bytes | None:
    """The request's API key: ``X-Api-Key`` if present, else a ``Bearer`` credential, else None.

    Other ``Authorization`` schemes carry no key for the gateway and are ignored.
    """
    if x_api_key:
        return x_api_key
    if authorization:
        scheme, _, credential = authorization.strip().partition(b" ")
        if scheme.lower() == b"bearer":
            return credential.strip() or None
    return None


def is_usable_key(api_key: bytes) -> bool:
    """At most ``MAX_KEY_LENGTH`` printable ASCII characters: what may name a tenant (and a Redis key)."""
    return len(api_key) <= MAX_KEY_LENGTH and api_key.isascii() and api_key.decode("ascii").isprintable()


def tenant_of(api_key: bytes | None, *, allow_anonymous: bool) -> str:
    """The tenant id: the API key (see :func:`api_key_of`), or ``anonymous`` when absent and allowed.

    Raises :class:`Unauthorized` without a key when anonymous use is off, and
    :class:`InvalidRequest` for a key that cannot be a Redis key segment (too long, control
    characters). The key is never echoed in either message.
    """
    if not api_key:
        if allow_anonymous:
            return ANONYMOUS
        raise Unauthorized(
            "an API key is required (X-Api-Key or Authorization: Bearer)", code="missing_api_key"
        )
    if not is_usable_key(api_key):
        raise InvalidRequest(
            f"the API key must be at most {MAX_KEY_LENGTH} printable ASCII characters", code="invalid_api_key"
        )
    return api_key.decode("ascii")
