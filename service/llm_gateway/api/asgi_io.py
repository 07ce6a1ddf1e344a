"""Small raw-ASGI helpers for the hot-path endpoints: bounded body reads and JSON responses."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Receive, Scope, Send

from llm_gateway.core.headers import header
from llm_gateway.errors import GatewayError, PayloadTooLarge, UnsupportedMediaType

__all__ = [
    "JSON_HEADERS",
    "ClientDisconnected",
    "Receive",
    "Scope",
    "Send",
    "read_json_body",
    "send_error",
    "send_response",
]

JSON_HEADERS = [(b"content-type", b"application/json")]


class ClientDisconnected(Exception):
    """The client went away before its request body was complete; there is no one to answer."""


async def read_json_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """Read the whole request body, refusing non-JSON (415) and anything over ``limit`` bytes (413).

    A declared ``Content-Length`` over the limit is refused before a byte of the body is read; a
    chunked body is counted as it arrives and refused as soon as it passes the limit. Raises
    :class:`ClientDisconnected` when the client leaves (or is cut off) before the body is complete.
    """
    content_type = header(scope, b"content-type")
    if content_type is None or content_type.split(b";", 1)[0].strip().lower() != b"application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes")
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes")
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def send_response(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Send a complete response in one body message (with its length, so keep-alive needs no chunking)."""
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: GatewayError, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer ``error`` as OpenAI-style JSON with its status, its headers and ``headers``."""
    await send_response(send, error.status, error.body(), [*JSON_HEADERS, *error.headers, *headers])
