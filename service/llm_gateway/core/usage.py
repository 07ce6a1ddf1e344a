"""Token usage reported by the upstream (pure): from whole answers, and from the usage event of streams.

Where the counts are is the API's :class:`UsageFields`. A stream whose API reports usage only when
asked is asked on the client's behalf (see :mod:`llm_gateway.core.apis`), so that streamed traffic
is counted too, and :class:`StreamUsage` then removes the usage event from what the client receives
unless the client asked for it itself. Other events of such a stream carry ``"usage": null``; they
pass unchanged (the SDKs accept the field either way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from llm_gateway.core.sse import SSEEvent

__all__ = ["StreamUsage", "Usage", "UsageFields", "usage_of"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the upstream counted for one request."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class UsageFields:
    """Where an API's token counts are: ``input`` and ``output`` of the object at ``container`` (a
    path of keys) in a response body or stream event. ``output`` None: the API produces no tokens
    (embeddings), so its output count is 0."""

    input: str
    output: str | None
    container: tuple[str, ...] = ("usage",)


def usage_of(payload: Any, fields: UsageFields) -> Usage | None:
    """The usage in an answer or event ``payload``; None when absent or malformed."""
    usage = payload
    for key in fields.container:
        usage = usage.get(key) if isinstance(usage, dict) else None
    if not isinstance(usage, dict):
        return None
    tokens_in = _count(usage.get(fields.input))
    tokens_out = 0 if fields.output is None else _count(usage.get(fields.output))
    if tokens_in is None or tokens_out is None:
        return None
    return Usage(tokens_in, tokens_out)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class StreamUsage:
    """Watches a stream's events for the model name and the usage event.

    ``process(events)`` returns the events to forward: all of them when ``forward_usage``, else all
    but the usage event (the one whose ``choices`` list is empty and whose usage is set; ``choices``
    names that list for the API, ``fields`` where the usage is). Only events
    whose data can hold usage are parsed, plus the first, for the response model. Events are read
    through :class:`~llm_gateway.core.sse.SSEEvent`, so ``id:``/``event:`` lines, multi-line data
    and any framing the decoder accepts are all the same here.
    """

    __slots__ = (
        "_choices",
        "_compact_null",
        "_fields",
        "_forward",
        "_key",
        "_null",
        "_seen_first",
        "model",
        "usage",
    )

    def __init__(self, fields: UsageFields, choices: str, *, forward_usage: bool) -> None:
        self._fields = fields
        self._choices = choices
        self._forward = forward_usage
        # Byte tests that skip parsing events without usage: `"usage":null` is OpenAI's own
        # spelling, a substring test; other spacing takes the regex.
        self._key = orjson.dumps(fields.container[-1])
        self._compact_null = self._key + b":null"
        self._null = re.compile(re.escape(self._key) + rb"\s*:\s*null")
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
            if not first and (self._key not in data or self._compact_null in data or self._null.search(data)):
                continue
            payload = _payload(data)
            if payload is None:
                continue
            self._seen_first = True
            if first and isinstance(payload.get("model"), str):
                self.model = payload["model"]
            usage = usage_of(payload, self._fields)
            if usage is None:
                continue
            self.usage = usage
            if not self._forward and not payload.get(self._choices):
                kept = [other for other in kept if other is not event]
        return kept


def _payload(data: bytes) -> dict[str, Any] | None:
    """The JSON object an event carries, or None (``[DONE]``, other data)."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None
