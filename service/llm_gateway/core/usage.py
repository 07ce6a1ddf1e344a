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
    path of keys) in a response body or stream event. A count left None is not there: an answer
    counts it 0 (embeddings produce no output tokens), a stream takes it from another event
    (Anthropic's input count comes in ``message_start``, its output count in ``message_delta``).
    ``input_extra`` are counts added to the input where present (Anthropic reports the prompt
    tokens written to and read from its cache apart from ``input_tokens``)."""

    input: str | None
    output: str | None
    container: tuple[str, ...] = ("usage",)
    input_extra: tuple[str, ...] = ()


def counts_of(payload: Any, fields: UsageFields) -> tuple[int | None, int | None] | None:
    """The ``(input, output)`` counts ``fields`` name in ``payload`` (None where it names none);
    None when the usage object is absent or a count it names is not a non-negative integer."""
    usage = payload
    for key in fields.container:
        usage = usage.get(key) if isinstance(usage, dict) else None
    if not isinstance(usage, dict):
        return None
    tokens_in = None if fields.input is None else _count(usage.get(fields.input))
    tokens_out = None if fields.output is None else _count(usage.get(fields.output))
    if (fields.input is not None and tokens_in is None) or (fields.output is not None and tokens_out is None):
        return None
    if tokens_in is not None:
        tokens_in += sum(_count(usage.get(name)) or 0 for name in fields.input_extra)
    return tokens_in, tokens_out


def usage_of(payload: Any, fields: UsageFields) -> Usage | None:
    """The usage in an answer ``payload`` (counts it does not name are 0); None when absent or
    malformed."""
    counts = counts_of(payload, fields)
    return None if counts is None else Usage(counts[0] or 0, counts[1] or 0)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class StreamUsage:
    """Watches a stream's events for the model name and the usage event.

    ``process(events)`` returns the events to forward: all of them when ``forward_usage``, else all
    but the usage event (the one whose ``choices`` list is empty and whose usage is set; ``choices``
    names that list for the API, ``fields`` where usage may be, each event read for each; counts
    found later replace earlier ones). Only events
    whose data can hold usage are parsed, plus the first, for the response model. Events are read
    through :class:`~llm_gateway.core.sse.SSEEvent`, so ``id:``/``event:`` lines, multi-line data
    and any framing the decoder accepts are all the same here.
    """

    __slots__ = (
        "_choices",
        "_compact_null",
        "_fields",
        "_forward",
        "_in",
        "_key",
        "_null",
        "_out",
        "_seen_first",
        "complete",
        "model",
        "usage",
    )

    def __init__(self, fields: tuple[UsageFields, ...], choices: str, *, forward_usage: bool) -> None:
        self._fields = fields
        self._in: int | None = None
        self._out: int | None = None
        self._choices = choices
        self._forward = forward_usage
        # Byte tests that skip parsing events without usage: `"usage":null` is OpenAI's own
        # spelling, a substring test; other spacing takes the regex.
        self._key = orjson.dumps(fields[0].container[-1])  # every API names it `usage`
        self._compact_null = self._key + b":null"
        self._null = re.compile(re.escape(self._key) + rb"\s*:\s*null")
        self._seen_first = False
        self.usage: Usage | None = None
        #: Whether the output count came (the usage is the whole stream's, not only its input's).
        self.complete = False
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
            if not self._count(payload):
                continue
            self.usage = Usage(self._in or 0, self._out or 0)
            if not self._forward and not payload.get(self._choices):
                kept = [other for other in kept if other is not event]
        return kept

    def _count(self, payload: dict[str, Any]) -> bool:
        """Take the counts ``payload`` carries; True when it carried any."""
        found = False
        for fields in self._fields:
            counts = counts_of(payload, fields)
            if counts is not None:
                found = True
                self._in = self._in if counts[0] is None else counts[0]
                if counts[1] is not None:
                    self._out, self.complete = counts[1], True
        return found


def _payload(data: bytes) -> dict[str, Any] | None:
    """The JSON object an event carries, or None (``[DONE]``, other data)."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None
