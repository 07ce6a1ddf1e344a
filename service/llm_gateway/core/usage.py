"""Token usage reported by the upstream (pure): from completions, and from the usage chunk of streams.

A stream reports usage only when the request asks for it (``stream_options.include_usage``). The
gateway asks on the client's behalf (:func:`ask_for_stream_usage`) so that streamed traffic is
counted too, and :class:`StreamUsage` then removes the usage chunk from what the client receives
unless the client asked for it itself. Other chunks of such a stream carry ``"usage": null``; they
pass unchanged (OpenAI SDKs accept the field either way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from llm_gateway.core.sse import SSEEvent

__all__ = ["StreamUsage", "Usage", "ask_for_stream_usage", "usage_of"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the upstream counted for one request."""

    input_tokens: int
    output_tokens: int


def usage_of(payload: Any) -> Usage | None:
    """The ``usage`` of a completion or chunk payload; None when absent or malformed."""
    usage = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    return Usage(prompt, completion)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def ask_for_stream_usage(payload: dict[str, Any]) -> bool:
    """Make a streaming request ask for usage; True when the client had asked for it itself.

    Sets ``stream_options.include_usage`` in ``payload`` (in place) when it was not already true.
    A ``stream_options`` that is not an object is left alone for the upstream to reject, and
    counts as not asked.
    """
    options = payload.get("stream_options")
    if options is None:
        payload["stream_options"] = {"include_usage": True}
        return False
    if not isinstance(options, dict):
        return False
    if options.get("include_usage") is True:
        return True
    options["include_usage"] = True
    return False


_USAGE = b'"usage"'
_COMPACT_NULL_USAGE = b'"usage":null'  # OpenAI's own spelling: a substring test, no regex needed
_NULL_USAGE = re.compile(rb'"usage"\s*:\s*null')


class StreamUsage:
    """Watches a chat-completion stream's events for the model name and the usage chunk.

    ``process(events)`` returns the events to forward: all of them when ``forward_usage``, else all
    but the usage chunk (the one whose ``choices`` is empty and whose ``usage`` is set). Only events
    whose data can hold usage are parsed, plus the first, for the response model. Events are read
    through :class:`~llm_gateway.core.sse.SSEEvent`, so ``id:``/``event:`` lines, multi-line data
    and any framing the decoder accepts are all the same here.
    """

    __slots__ = ("_forward", "_seen_first", "model", "usage")

    def __init__(self, *, forward_usage: bool) -> None:
        self._forward = forward_usage
        self._seen_first = False
        self.usage: Usage | None = None
        self.model: str | None = None

    def process(self, events: list[SSEEvent]) -> list[SSEEvent]:
        kept = events
        for event in events:
            data = event.data
            if data is None:
                continue
            first = not self._seen_first
            if not first and (_USAGE not in data or _COMPACT_NULL_USAGE in data or _NULL_USAGE.search(data)):
                continue
            payload = _payload(data)
            if payload is None:
                continue
            self._seen_first = True
            if first and isinstance(payload.get("model"), str):
                self.model = payload["model"]
            usage = usage_of(payload)
            if usage is None:
                continue
            self.usage = usage
            if not self._forward and not payload.get("choices"):
                kept = [other for other in kept if other is not event]
        return kept


def _payload(data: bytes) -> dict[str, Any] | None:
    """The JSON object an event carries, or None (``[DONE]``, other data)."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None
