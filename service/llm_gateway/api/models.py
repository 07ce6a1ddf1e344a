"""``GET /v1/models``, proxied (OpenAI SDKs call it) with the same header handling as chat."""

from __future__ import annotations

from llm_gateway.adapters.upstream import Upstream
from llm_gateway.api.asgi_io import Receive, Scope, Send, send_error
from llm_gateway.api.relay import relay_buffered
from llm_gateway.core.headers import forwarded_headers
from llm_gateway.errors import GatewayError, MethodNotAllowed

__all__ = ["ListModels"]


class ListModels:
    """Relays the upstream's model list; errors map exactly as for chat completions."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        first_byte_timeout: float | None,
        idle_timeout: float,
        upstream_secret: str,
    ) -> None:
        self._upstream = upstream
        self._first_byte_timeout = first_byte_timeout
        self._idle_timeout = idle_timeout
        self._secret = upstream_secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_error(
                send, MethodNotAllowed("use GET for this endpoint", headers=[(b"allow", b"GET")])
            )
            return
        try:
            response = await self._upstream.open(
                "GET",
                "/models",
                body=None,
                headers=forwarded_headers(scope["headers"]),
                first_byte_timeout=self._first_byte_timeout,
            )
            async with response:
                await relay_buffered(response, send, idle_timeout=self._idle_timeout, secret=self._secret)
        except GatewayError as error:
            await send_error(send, error)
