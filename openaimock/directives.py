"""Per-request behaviour of the mock, chosen by the ``X-Mock`` header or the model name (pure).

Grammar: a comma-separated list of ``echo``, ``status=N``, ``drop-after=N``, ``latency-ms=N``,
``inter-token-ms=N``, ``chunk-chars=N`` (stream the reply in N-character pieces instead of words) and
``reply=B64`` (reply with this base64url text, so a test controls exactly what the upstream says)
and ``echo-auth`` (an error from ``status=N`` quotes the ``Authorization`` header it received, as
some upstreams do with a rejected key) and ``retry-after=N``/``retry-after-ms=N`` (an error from
``status=N`` carries ``Retry-After: N`` / ``retry-after-ms: N``) and ``garbage`` (a stream of
bytes that are not SSE at all)
and ``script=NAME`` (answer with a scripted response: exact bytes, exact writes; see
:mod:`openaimock.scripts`).
In a model name it follows a ``mock:`` prefix, e.g. ``mock:echo,drop-after=3``, which lets tests
reach the mock through the gateway (which forwards the body, not the header).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace

__all__ = ["Directives", "parse_directives"]

_INT_OPTIONS = {
    "status": "status",
    "drop-after": "drop_after",
    "latency-ms": "latency_ms",
    "inter-token-ms": "inter_token_ms",
    "chunk-chars": "chunk_chars",
    "retry-after": "retry_after",
    "retry-after-ms": "retry_after_ms",
}


@dataclass(frozen=True, slots=True)
class Directives:
    """What the mock should do for one request; ``None`` means the server-wide default."""

    echo: bool = False
    echo_auth: bool = False
    garbage: bool = False
    status: int | None = None
    drop_after: int | None = None
    latency_ms: int | None = None
    inter_token_ms: int | None = None
    chunk_chars: int | None = None
    retry_after: int | None = None
    retry_after_ms: int | None = None
    reply: str | None = None
    script: str | None = None


def parse_directives(header: str | None, model: str | None, fault: str | None = None) -> Directives:
    """Merge directives from ``model``, ``header`` and the server-wide ``fault`` (each later one wins
    where two set the same directive).

    Raises ``ValueError`` for an unknown directive or a non-integer value.
    """
    directives = Directives()
    if model and model.startswith("mock:"):
        directives = _apply(directives, model.removeprefix("mock:"))
    for text in (header, fault):
        if text:
            directives = _apply(directives, text)
    return directives


def _apply(directives: Directives, text: str) -> Directives:
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name == "echo" and not value:
            directives = replace(directives, echo=True)
        elif name == "echo-auth" and not value:
            directives = replace(directives, echo_auth=True)
        elif name == "garbage" and not value:
            directives = replace(directives, garbage=True)
        elif name == "reply" and value:
            try:
                padded = value + "=" * (-len(value) % 4)
                text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise ValueError(f"reply= needs base64url text, got {value!r}") from None
            directives = replace(directives, reply=text)
        elif name == "script" and value:
            directives = replace(directives, script=value)
        elif name in _INT_OPTIONS and value.isdigit():
            changes: dict[str, int] = {_INT_OPTIONS[name]: int(value)}
            directives = replace(directives, **changes)  # type: ignore[arg-type]
        else:
            raise ValueError(f"unknown mock directive {item!r}")
    return directives
