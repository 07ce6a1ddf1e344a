"""Chat-completion bodies and SSE chunks the mock answers with (pure)."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

__all__ = ["DEFAULT_REPLY", "completion", "pieces", "reply_text", "sse", "stream_events", "tokenize"]

#: Twenty words, like the peers' benchmark mock, so stream sizes are comparable.
DEFAULT_REPLY = (
    "Hello! This is openaimock answering your request with a fixed reply of exactly twenty "
    "words, streamed one word per chunk."
)

_TOKEN = re.compile(r"\s*\S+\s*")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into word chunks whose concatenation is exactly ``text``."""
    return _TOKEN.findall(text) or [text]


def pieces(text: str, chunk_chars: int | None) -> list[str]:
    """How a reply is streamed: word by word (:func:`tokenize`), or in ``chunk_chars``-character
    pieces; nothing for an empty reply."""
    if chunk_chars:
        return [text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars)]
    return tokenize(text) if text else []


def sse(kind: str, payload: dict[str, Any]) -> bytes:
    """A typed SSE event: its ``event:`` line and its JSON with ``type`` first."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


def reply_text(payload: dict[str, Any], echo: bool) -> str:
    """The reply: the last user message's text when ``echo``, else :data:`DEFAULT_REPLY`."""
    if not echo:
        return DEFAULT_REPLY
    for message in reversed(payload.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _usage(payload: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt_tokens = sum(
        len(tokenize(_text_of(m.get("content"))))
        for m in payload.get("messages") or []
        if isinstance(m, dict)
    )
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(payload: dict[str, Any], text: str, request_id: str) -> bytes:
    """A non-streaming ``chat.completion`` body with ``usage``."""
    return orjson.dumps(
        {
            "id": request_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(payload, len(tokenize(text)) if text else 0),
        }
    )


def stream_events(
    payload: dict[str, Any], text: str, request_id: str, chunk_chars: int | None = None
) -> list[bytes]:
    """SSE events for a streamed reply: role, one chunk per word (or per ``chunk_chars`` characters),
    finish, usage if asked, ``[DONE]``.

    As OpenAI does, a stream that asked for usage (``stream_options.include_usage``) carries
    ``"usage": null`` on every chunk and ends with a chunk whose ``choices`` is empty.
    """
    created = int(time.time())
    model = payload.get("model", "")
    tokens = pieces(text, chunk_chars)
    options = payload.get("stream_options")
    with_usage = isinstance(options, dict) and options.get("include_usage") is True
    base = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model}

    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        body: dict[str, Any] = {**base, "choices": choices}
        if with_usage:
            body["usage"] = usage
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def delta(content: dict[str, Any], finish: str | None = None) -> bytes:
        return chunk([{"index": 0, "delta": content, "finish_reason": finish}])

    events = [delta({"role": "assistant", "content": ""})]
    events.extend(delta({"content": token}) for token in tokens)
    events.append(delta({}, "stop"))
    if with_usage:
        events.append(chunk([], _usage(payload, len(tokens))))
    events.append(b"data: [DONE]\n\n")
    return events
