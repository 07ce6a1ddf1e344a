"""Which client request headers may travel to the upstream (pure).

An allow-list, not a deny-list: credentials (``Authorization``, ``X-Api-Key``, cookies), hop-by-hop
headers, forwarding headers that reveal the client, and account selectors such as
``OpenAI-Organization`` (which would let a client pick another organisation under the gateway's
key) can never slip through, whatever new header a client invents.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Scope

__all__ = ["FORWARDED_REQUEST_HEADERS", "forwarded_headers", "header"]

#: Lower-case names of client headers passed to the upstream unchanged.
FORWARDED_REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "openai-beta",
        "idempotency-key",
        "x-request-id",
        # W3C trace context: passed on when tracing is off; the gateway's own span replaces it when on.
        "traceparent",
        "tracestate",
    }
)


def forwarded_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The allow-listed subset of raw ASGI ``headers`` (lower-case names), as a ``str`` dict."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name.decode("latin-1") in FORWARDED_REQUEST_HEADERS
    }


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of request header ``name`` (lower-case) in an ASGI ``scope``, or ``None``."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None
