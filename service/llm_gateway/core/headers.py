"""Which headers cross the gateway, in either direction, and the request id that follows a request (pure).

Both directions are allow-lists, not deny-lists. Towards the upstream: credentials
(``Authorization``, ``X-Api-Key``, cookies), hop-by-hop headers, forwarding headers that reveal the
client, and account selectors such as ``OpenAI-Organization`` (which would let a client pick another
organisation under the gateway's key) can never slip through, whatever new header a client invents.
Towards the client: what an SDK acts on (``retry-after``, ``retry-after-ms``, ``x-should-retry``)
and what helps diagnose a call (``openai-processing-ms``, ``openai-version``), never the
upstream's organisation-level ``x-ratelimit-*`` (they would read as the tenant's own), its
``openai-organization`` or ``openai-project``, or cookies. The upstream's ``x-request-id`` (what a
provider's support asks for) reaches the client as ``x-upstream-request-id``; ``x-request-id`` is
the gateway's own id for the request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from starlette.types import Scope

__all__ = [
    "FORWARDED_REQUEST_HEADERS",
    "PASSED_RESPONSE_HEADERS",
    "UPSTREAM_REQUEST_ID_HEADER",
    "caller_request_id",
    "forwarded_headers",
    "header",
    "passed_response_headers",
]

#: Lower-case names of client headers passed to the upstream unchanged.
FORWARDED_REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "openai-beta",
        # Anthropic's API version and beta features, which the client picks.
        "anthropic-version",
        "anthropic-beta",
        "idempotency-key",
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


_NUMBER = r"[0-9]{1,12}(?:\.[0-9]{1,6})?"
#: Upstream response headers passed to the client unchanged (lower-case names), each only when its
#: value has the shape that header has: nothing else an upstream puts there (an echoed credential,
#: a long or multi-line value) reaches the client.
PASSED_RESPONSE_HEADERS: dict[str, re.Pattern[str]] = {
    # Seconds, or an HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`).
    "retry-after": re.compile(
        rf"{_NUMBER}|[A-Z][a-z]{{2}}, [0-9]{{2}} [A-Z][a-z]{{2}} [0-9]{{4}} [0-9:]{{8}} GMT"
    ),
    "retry-after-ms": re.compile(_NUMBER),
    "x-should-retry": re.compile("true|false"),
    "openai-processing-ms": re.compile(_NUMBER),
    "openai-version": re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
}
_PASSED_RAW = tuple((name, name.encode(), shape) for name, shape in sorted(PASSED_RESPONSE_HEADERS.items()))
#: The header that carries the upstream's own request id to the client.
UPSTREAM_REQUEST_ID_HEADER = b"x-upstream-request-id"

# What a request id may be made of: safe in a header, a log line and a span attribute.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")


def passed_response_headers(
    headers: Mapping[str, str], secret: str = ""
) -> tuple[list[tuple[bytes, bytes]], str | None]:
    """The upstream response headers the client gets (raw ASGI pairs), and the upstream's request id.

    ``headers`` is the upstream response's (case-insensitive) mapping. A value without its header's
    shape is dropped, and so is an upstream request id that is not a safe id (see
    :func:`caller_request_id`) or contains ``secret`` (the gateway's upstream key; a value that is
    not ASCII never is a safe id).
    """
    passed = [
        (raw, value.encode("latin-1"))
        for name, raw, shape in _PASSED_RAW
        if (value := headers.get(name)) is not None and shape.fullmatch(value)
    ]
    upstream_id = caller_request_id((headers.get("x-request-id") or "").encode("utf-8", "replace"))
    if upstream_id is not None and secret and secret in upstream_id:
        upstream_id = None
    if upstream_id is not None:
        passed.append((UPSTREAM_REQUEST_ID_HEADER, upstream_id.encode()))
    return passed, upstream_id


def caller_request_id(value: bytes | None) -> str | None:
    """``value`` as a request id when it is a safe one: 1 to 128 characters of letters, digits and
    ``. _ : / + = -``, starting with a letter or digit. Otherwise None (the gateway makes its own)."""
    if value and _REQUEST_ID.fullmatch(value):
        return value.decode("ascii")
    return None
