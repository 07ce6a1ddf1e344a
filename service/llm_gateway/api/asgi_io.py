"""Small raw-ASGI helpers for the hot-path endpoints: complete JSON responses and errors."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Receive, Scope, Send

from llm_gateway.errors import GatewayError

__all__ = ["JSON_HEADERS", "Receive", "Scope", "Send", "send_error", "send_response"]

JSON_HEADERS = [(b"content-type", b"application/json")]


async def send_response(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Send a complete response in one body message (with its length, so keep-alive needs no chunking)."""
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send, error: GatewayError, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer ``error``, rendered as ``body`` (JSON in the API's own error shape), with its status,
    its headers and ``headers``."""
    await send_response(send, error.status, body, [*JSON_HEADERS, *error.headers, *headers])
