"""Who a request is for (pure): the tenant named by ``X-Api-Key``."""

from __future__ import annotations

from llm_gateway.errors import InvalidRequest, Unauthorized

__all__ = ["ANONYMOUS", "MAX_KEY_LENGTH", "tenant_of"]

ANONYMOUS = "anonymous"
MAX_KEY_LENGTH = 256


def tenant_of(api_key: bytes | None, *, allow_anonymous: bool) -> str:
    """The tenant id: the ``X-Api-Key`` value, or ``anonymous`` when absent and allowed.

    Raises :class:`Unauthorized` without a key when anonymous use is off, and
    :class:`InvalidRequest` for a key that cannot be a Redis key segment (too long, control
    characters). The key is never echoed in either message.
    """
    if not api_key:
        if allow_anonymous:
            return ANONYMOUS
        raise Unauthorized("an X-Api-Key header is required", code="missing_api_key")
    if len(api_key) > MAX_KEY_LENGTH or not api_key.isascii() or not api_key.decode("ascii").isprintable():
        raise InvalidRequest(
            f"X-Api-Key must be at most {MAX_KEY_LENGTH} printable ASCII characters", code="invalid_api_key"
        )
    return api_key.decode("ascii")
