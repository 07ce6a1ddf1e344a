"""Where redaction applies in OpenAI payloads (pure): request messages, completions, SSE chunks.

Only text the model reads or writes is touched: ``messages[].content`` (strings and ``text`` parts)
going up, ``choices[].message.content`` and streamed ``choices[].delta.content`` coming back.
Everything else is left exactly as it was; an unchanged payload is never re-serialised.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from llm_gateway.core.redaction.engine import Redactor, StreamRedactor
from llm_gateway.core.redaction.entities import Entity

__all__ = ["SSERedactor", "redact_completion", "redact_messages"]


def redact_messages(payload: dict[str, Any], redactor: Redactor, found: Counter[Entity]) -> bool:
    """Redact every message's text in place; True when anything changed."""
    changed = False
    for message in payload.get("messages") or ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            redacted = redactor.redact(content, found)
            if redacted != content:
                message["content"] = redacted
                changed = True
        elif isinstance(content, list):
            for part in content:
                if (
                    isinstance(part, dict)
                    and part.get("type") == "text"
                    and isinstance(part.get("text"), str)
                ):
                    redacted = redactor.redact(part["text"], found)
                    if redacted != part["text"]:
                        part["text"] = redacted
                        changed = True
    return changed


def redact_completion(body: bytes, payload: Any, redactor: Redactor, found: Counter[Entity]) -> bytes:
    """A ``chat.completion`` body with ``choices[].message.content`` redacted (``body`` if unchanged).

    ``payload`` is ``body`` already parsed, or None when it is not JSON: such a body is redacted as
    plain text, so nothing passes unexamined.
    """
    if payload is None:
        return redactor.redact(body.decode("utf-8", "replace"), found).encode()
    if not isinstance(payload, dict):
        return body
    changed = False
    for choice in payload.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            redacted = redactor.redact(content, found)
            if redacted != content:
                message["content"] = redacted  # type: ignore[index]
                changed = True
    return orjson.dumps(payload) if changed else body


class SSERedactor:
    """Redacts a chat-completion stream event by event, per choice index.

    ``process(events)`` takes decoded SSE events (as :class:`~llm_gateway.core.sse.SSEDecoder` gives
    them) and returns the events to send: the same events, with ``delta.content`` holding only text
    that is safe to release. A choice's held text is released by its ``finish_reason`` event; text
    still held when ``[DONE]`` arrives (or at :meth:`finish`) goes out in an extra chunk for its
    choice, before ``[DONE]``. Events that are not JSON chunks pass through whole-text redaction.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._choices: dict[int, StreamRedactor] = {}
        self._last: dict[str, Any] = {}  # the last chunk: the template for chunks of held text
        self.found: Counter[Entity] = Counter()

    def process(self, events: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for event in events:
            data = _data(event)
            if data is None:
                out.append(event)
            elif data == b"[DONE]":
                out.extend(self.finish())
                out.append(event)
            else:
                out.append(self._chunk(event, data))
        return out

    def finish(self) -> list[bytes]:
        """Chunks for text still held, one per choice; afterwards nothing is held."""
        events = []
        template = {key: self._last[key] for key in ("id", "object", "created", "model") if key in self._last}
        for index, stream in sorted(self._choices.items()):
            text = stream.flush()
            self._count(stream)
            if text:
                choice = {"index": index, "delta": {"content": text}, "finish_reason": None}
                events.append(b"data: " + orjson.dumps({**template, "choices": [choice]}))
        self._choices.clear()
        return events

    def _chunk(self, event: bytes, data: bytes) -> bytes:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            found: Counter[Entity] = Counter()
            text = self._redactor.redact(data.decode("utf-8", "replace"), found)
            self.found.update(found)
            return event if not found else b"data: " + text.encode()
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not choices:
            return event
        self._last = payload
        changed = False
        for choice in choices:
            if isinstance(choice, dict) and self._choice(choice):
                changed = True
        return b"data: " + orjson.dumps(payload) if changed else event

    def _choice(self, choice: dict[str, Any]) -> bool:
        index = choice.get("index", 0)
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        stream = self._choices.get(index)
        if stream is None:
            stream = self._choices[index] = StreamRedactor(self._redactor)
        released = stream.feed(content) if isinstance(content, str) else None
        if choice.get("finish_reason") is not None:
            released = (released or "") + stream.flush()
            del self._choices[index]
        self._count(stream)
        if released is None or released == content:
            return False
        if not isinstance(delta, dict):
            delta = choice["delta"] = {}
        delta["content"] = released
        return True

    def _count(self, stream: StreamRedactor) -> None:
        if stream.found:
            self.found.update(stream.found)
            stream.found.clear()


def _data(event: bytes) -> bytes | None:
    """The ``data`` field of an SSE event (lines joined by ``\\n``), or None if it has none."""
    if event.startswith(b"data: ") and b"\n" not in event:
        return event[6:]
    lines = [line for line in event.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    return b"\n".join(line[6:] if line.startswith(b"data: ") else line[5:] for line in lines)
