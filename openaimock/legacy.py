"""Answers of the OpenAI APIs beside chat (pure): legacy completions and embeddings.

Completions answer like chat completions with ``choices[].text``; their streams carry the same
envelope, ``finish_reason`` chunk, optional usage chunk and ``[DONE]``. Embeddings answer with one
deterministic vector per input (from the input's bytes, so equal inputs embed equally), as floats
or, for ``encoding_format: base64`` (what the Python SDK asks for by default), as little-endian
float32 bytes in base64.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from typing import Any

import orjson

from openaimock.completions import pieces, tokenize

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "completion_text",
    "embedding",
    "text_completion",
    "text_completion_events",
]

#: The length of every vector the mock answers with (unless the request asks for ``dimensions``).
EMBEDDING_DIMENSIONS = 8


def _inputs(value: Any) -> list[Any]:
    """A ``prompt`` or ``input`` as a list of its items (a string, or token ids, each)."""
    if isinstance(value, list) and value and not all(isinstance(item, int) for item in value):
        return value
    return [value]


def _tokens(items: list[Any]) -> int:
    return sum(len(item) if isinstance(item, list) else len(tokenize(str(item))) for item in items)


def completion_text(payload: dict[str, Any]) -> str:
    """What an echo answers for a completions request: its last text prompt."""
    texts = [item for item in _inputs(payload.get("prompt")) if isinstance(item, str)]
    return texts[-1] if texts else ""


def _usage(payload: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt_tokens = _tokens(_inputs(payload.get("prompt")))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def text_completion(payload: dict[str, Any], text: str, request_id: str) -> bytes:
    """A non-streaming ``text_completion`` body with ``usage``."""
    return orjson.dumps(
        {
            "id": request_id,
            "object": "text_completion",
            "created": int(time.time()),
            "model": payload.get("model", ""),
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "usage": _usage(payload, len(tokenize(text)) if text else 0),
        }
    )


def text_completion_events(
    payload: dict[str, Any], text: str, request_id: str, chunk_chars: int | None = None
) -> list[bytes]:
    """SSE events of a streamed completion: one chunk per word (or per ``chunk_chars`` characters),
    the finish chunk, the usage chunk if asked (``stream_options.include_usage``), ``[DONE]``."""
    parts = pieces(text, chunk_chars)
    options = payload.get("stream_options")
    with_usage = isinstance(options, dict) and options.get("include_usage") is True
    base = {
        "id": request_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": payload.get("model", ""),
    }

    def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        body: dict[str, Any] = {**base, "choices": choices}
        if with_usage:
            body["usage"] = usage
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def piece(content: str, finish: str | None = None) -> bytes:
        return chunk([{"text": content, "index": 0, "logprobs": None, "finish_reason": finish}])

    events = [piece(content) for content in parts]
    events.append(piece("", "stop"))
    if with_usage:
        events.append(chunk([], _usage(payload, len(parts))))
    events.append(b"data: [DONE]\n\n")
    return events


def _vector(item: Any, dimensions: int) -> list[float]:
    digest = hashlib.sha256(orjson.dumps(item)).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(dimensions)]


def embedding(payload: dict[str, Any]) -> bytes:
    """An embeddings ``list`` body: a vector per input, ``usage`` with prompt tokens only."""
    items = _inputs(payload.get("input"))
    dimensions = payload.get("dimensions")
    size = dimensions if isinstance(dimensions, int) and 0 < dimensions <= 4096 else EMBEDDING_DIMENSIONS
    as_base64 = payload.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(items):
        vector = _vector(item, size)
        encoded: Any = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = _tokens(items)
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": payload.get("model", ""),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
