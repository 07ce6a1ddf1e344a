"""Answers of the Anthropic Messages API (pure): ``POST /v1/messages``, whole and streamed.

A whole answer is a ``message`` with one ``text`` content block and ``usage``
(``input_tokens``/``output_tokens``). A stream is the events the Anthropic SDK reads, each with its
``event:`` line: ``message_start`` (input tokens), ``content_block_start``, ``ping``, one
``content_block_delta`` (``text_delta``) per word (or per ``chunk_chars`` characters),
``content_block_stop``, ``message_delta`` (``stop_reason``, output tokens), ``message_stop``.
"""

from __future__ import annotations

from typing import Any

import orjson

from openaimock.completions import pieces, sse, tokenize

__all__ = ["message", "message_events", "message_input_text", "token_count"]


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
    return []


def message_input_text(payload: dict[str, Any]) -> str:
    """What an echo answers: the last user message's text."""
    for entry in reversed(payload.get("messages") or []):
        if isinstance(entry, dict) and entry.get("role") == "user":
            return "".join(_texts(entry.get("content")))
    return ""


def _input_tokens(payload: dict[str, Any]) -> int:
    texts = _texts(payload.get("system"))
    for entry in payload.get("messages") or []:
        if isinstance(entry, dict):
            texts.extend(_texts(entry.get("content")))
    return sum(len(tokenize(text)) for text in texts)


def _message(
    payload: dict[str, Any], request_id: str, content: list[dict[str, Any]], output: int
) -> dict[str, Any]:
    return {
        "id": request_id,
        "type": "message",
        "role": "assistant",
        "model": payload.get("model", ""),
        "content": content,
        "stop_reason": "end_turn" if content else None,
        "stop_sequence": None,
        "usage": {"input_tokens": _input_tokens(payload), "output_tokens": output},
    }


def token_count(payload: dict[str, Any]) -> bytes:
    """What ``/v1/messages/count_tokens`` answers: ``{"input_tokens": N}``."""
    return orjson.dumps({"input_tokens": _input_tokens(payload)})


def message(payload: dict[str, Any], text: str, request_id: str) -> bytes:
    """A whole ``message``."""
    output = len(tokenize(text)) if text else 0
    return orjson.dumps(_message(payload, request_id, [{"type": "text", "text": text}], output))


def message_events(
    payload: dict[str, Any], text: str, request_id: str, chunk_chars: int | None = None
) -> list[bytes]:
    """The SSE events of a streamed message (see the module's description)."""
    parts = pieces(text, chunk_chars)
    events: list[bytes] = []

    def event(kind: str, **fields: Any) -> None:
        events.append(sse(kind, fields))

    event("message_start", message=_message(payload, request_id, [], 1))
    event("content_block_start", index=0, content_block={"type": "text", "text": ""})
    event("ping")
    for piece in parts:
        event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
    event("content_block_stop", index=0)
    event(
        "message_delta",
        delta={"stop_reason": "end_turn", "stop_sequence": None},
        usage={"output_tokens": len(parts)},
    )
    event("message_stop")
    return events
