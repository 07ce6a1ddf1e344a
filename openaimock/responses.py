"""Answers of the OpenAI Responses API (pure): ``POST /v1/responses``, whole and streamed.

A whole answer is a ``response`` object with one ``message`` output item holding one
``output_text`` part, and ``usage`` (``input_tokens``/``output_tokens``). A stream is the typed
events the SDK reads (each with its ``event:`` line and a ``sequence_number``):
``response.created``, ``response.output_item.added``, ``response.content_part.added``, one
``response.output_text.delta`` per word (or per ``chunk_chars`` characters), then
``response.output_text.done``, ``response.content_part.done``, ``response.output_item.done`` and
``response.completed`` with the whole response and its usage.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from openaimock.completions import pieces, sse, tokenize

__all__ = ["response", "response_events", "response_input_text"]


def _texts(value: Any) -> list[str]:
    """The texts of an ``input``: a string, or items whose ``content`` is a string or parts."""
    if isinstance(value, str):
        return [value]
    texts: list[str] = []
    for item in value if isinstance(value, list) else []:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return texts


def response_input_text(payload: dict[str, Any]) -> str:
    """What an echo answers: the last text of the ``input``."""
    texts = _texts(payload.get("input"))
    return texts[-1] if texts else ""


def _object(payload: dict[str, Any], text: str, request_id: str, status: str) -> dict[str, Any]:
    done = status == "completed"
    input_tokens = sum(len(tokenize(t)) for t in _texts(payload.get("input")))
    output_tokens = len(tokenize(text)) if text else 0
    return {
        "id": request_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": payload.get("model", ""),
        "output": [
            {
                "type": "message",
                "id": f"msg_{request_id}",
                "status": status,
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}] if done else [],
            }
        ]
        if done
        else [],
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }
        if done
        else None,
    }


def response(payload: dict[str, Any], text: str, request_id: str) -> bytes:
    """A whole ``response`` object."""
    return orjson.dumps(_object(payload, text, request_id, "completed"))


def response_events(
    payload: dict[str, Any], text: str, request_id: str, chunk_chars: int | None = None
) -> list[bytes]:
    """The SSE events of a streamed response (see the module's description)."""
    parts = pieces(text, chunk_chars)
    item_id = f"msg_{request_id}"
    events: list[bytes] = []

    def event(kind: str, **fields: Any) -> None:
        events.append(sse(kind, {"sequence_number": len(events), **fields}))

    item = {"type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    place = {"item_id": item_id, "output_index": 0, "content_index": 0}
    event("response.created", response=_object(payload, "", request_id, "in_progress"))
    event("response.output_item.added", output_index=0, item=item)
    event("response.content_part.added", **place, part=part)
    for piece in parts:
        event("response.output_text.delta", **place, delta=piece)
    event("response.output_text.done", **place, text=text)
    event("response.content_part.done", **place, part={**part, "text": text})
    whole = _object(payload, text, request_id, "completed")
    event("response.output_item.done", output_index=0, item=whole["output"][0])
    event("response.completed", response=whole)
    return events
