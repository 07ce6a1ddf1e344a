"""``POST /v1/chat/completions``: the hot path, written as a plain ASGI app.

Plain ASGI (routed inside the FastAPI app) because a FastAPI-decorated handler halves throughput
on our harness; the contract is the same: validate what the gateway needs, shed load beyond
``MAX_CONCURRENCY``, forward the body as sent, relay JSON or SSE back.
"""

from __future__ import annotations

from llm_gateway.adapters.upstream import Upstream
from llm_gateway.api.asgi_io import Receive, Scope, Send, read_json_body, send_error
from llm_gateway.api.disconnect import CancelOnDisconnect
from llm_gateway.api.relay import StreamTimings, relay_buffered, relay_stream
from llm_gateway.core.chat_request import parse_chat_request
from llm_gateway.core.concurrency import ConcurrencyLimit
from llm_gateway.core.headers import forwarded_headers
from llm_gateway.errors import GatewayError, MethodNotAllowed, Overloaded, UpstreamTimeout
from llm_gateway.telemetry.metrics import GatewayMetrics

__all__ = ["ChatCompletions"]

_ALLOW_POST = [(b"allow", b"POST")]


class ChatCompletions:
    """The chat-completions endpoint; one instance per app, holding no per-request state."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        limit: ConcurrencyLimit,
        metrics: GatewayMetrics,
        max_body_bytes: int,
        first_byte_timeout: float | None,
        stream_timings: StreamTimings,
        upstream_secret: str,
    ) -> None:
        self._upstream = upstream
        self._limit = limit
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._first_byte_timeout = first_byte_timeout
        self._timings = stream_timings
        self._secret = upstream_secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await send_error(send, MethodNotAllowed("use POST for this endpoint"), _ALLOW_POST)
            return
        if not self._limit.try_acquire():
            self._metrics.load_shed.inc()
            await send_error(send, Overloaded("server overloaded"))
            return
        try:
            await self._proxy(scope, receive, send)
        except GatewayError as error:
            if isinstance(error, UpstreamTimeout):
                self._metrics.upstream_timeouts.inc()
            await send_error(send, error)
        finally:
            self._limit.release()

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_json_body(scope, receive, self._max_body_bytes)
        request = parse_chat_request(body)
        headers = forwarded_headers(scope["headers"])
        async with CancelOnDisconnect(receive):
            response = await self._upstream.open(
                "POST",
                "/chat/completions",
                body=body,
                headers=headers,
                first_byte_timeout=self._first_byte_timeout,
            )
            async with response:
                if (
                    request.stream
                    and response.status == 200
                    and response.content_type.startswith("text/event-stream")
                ):
                    await relay_stream(response, send, self._timings)
                else:
                    await relay_buffered(response, send, idle_timeout=self._timings.idle, secret=self._secret)
