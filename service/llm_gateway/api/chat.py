"""``POST /v1/chat/completions``: the hot path, written as a plain ASGI app.

Plain ASGI (routed in front of the FastAPI app) because FastAPI's request handling costs more than
the whole proxy. Per request: shed load beyond ``MAX_CONCURRENCY``, validate what the gateway needs,
admit against quota and rate limit, redact PII from the messages, forward the body (as sent when
nothing was redacted), relay JSON or SSE back, redacted, with the ``x-ratelimit-*`` headers.
"""

from __future__ import annotations

from collections import Counter

import orjson

from llm_gateway.adapters.upstream import Upstream
from llm_gateway.api.admission import Admission
from llm_gateway.api.asgi_io import Receive, Scope, Send, header, read_json_body, send_error
from llm_gateway.api.disconnect import CancelOnDisconnect
from llm_gateway.api.relay import StreamTimings, relay_buffered, relay_stream
from llm_gateway.core.chat_request import parse_chat_request
from llm_gateway.core.client_ip import Networks, client_ip
from llm_gateway.core.concurrency import ConcurrencyLimit
from llm_gateway.core.headers import forwarded_headers
from llm_gateway.core.quota import Decision
from llm_gateway.core.redaction import Entity, Redactor, SSERedactor, redact_completion, redact_messages
from llm_gateway.core.tenant import tenant_of
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
        admission: Admission,
        allow_anonymous: bool,
        trusted_proxies: Networks,
        max_body_bytes: int,
        first_byte_timeout: float | None,
        stream_timings: StreamTimings,
        upstream_secret: str,
        redactor: Redactor | None,
    ) -> None:
        self._upstream = upstream
        self._limit = limit
        self._metrics = metrics
        self._admission = admission
        self._allow_anonymous = allow_anonymous
        self._trusted_proxies = trusted_proxies
        self._max_body_bytes = max_body_bytes
        self._first_byte_timeout = first_byte_timeout
        self._timings = stream_timings
        self._secret = upstream_secret.encode()
        self._redactor = redactor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await send_error(send, MethodNotAllowed("use POST for this endpoint", headers=_ALLOW_POST))
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
        decision = await self._admit(scope)
        redactor = self._redactor
        if redactor is not None:
            found: Counter[Entity] = Counter()
            if redact_messages(request.payload, redactor, found):
                body = orjson.dumps(request.payload)
                self._metrics.count_redactions(found, "request")
        limit_headers = decision.headers()
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
                    sse = SSERedactor(redactor) if redactor is not None else None
                    try:
                        await relay_stream(response, send, self._timings, limit_headers, sse)
                    finally:
                        if sse is not None:
                            self._metrics.count_redactions(sse.found, "response")
                else:
                    await relay_buffered(
                        response,
                        send,
                        idle_timeout=self._timings.idle,
                        secret=self._secret,
                        headers=limit_headers,
                        transform=None if redactor is None else self._redact_completion,
                    )

    def _redact_completion(self, body: bytes) -> bytes:
        """A successful non-stream body with its completions redacted (only when redaction is on)."""
        assert self._redactor is not None
        found: Counter[Entity] = Counter()
        body = redact_completion(body, self._redactor, found)
        self._metrics.count_redactions(found, "response")
        return body

    async def _admit(self, scope: Scope) -> Decision:
        """Quota and rate limit. Rate limits count per API key, else per client address and path."""
        api_key = header(scope, b"x-api-key")
        tenant = tenant_of(api_key, allow_anonymous=self._allow_anonymous)
        if api_key:
            return await self._admission.admit(tenant, tenant)
        peer = scope["client"][0] if scope.get("client") else None
        forwarded = header(scope, b"x-forwarded-for")
        address = client_ip(peer, forwarded.decode("latin-1") if forwarded else None, self._trusted_proxies)
        return await self._admission.admit(tenant, f"{address}:{scope['path']}")
