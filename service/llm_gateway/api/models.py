"""``GET /v1/models``, proxied (OpenAI SDKs call it) with the same header handling as chat."""

from __future__ import annotations

from llm_gateway.adapters.upstream import Upstream
from llm_gateway.api.asgi_io import Receive, Scope, Send, send_error
from llm_gateway.api.identity import Identify
from llm_gateway.api.relay import open_upstream, relay_buffered
from llm_gateway.core.headers import forwarded_headers
from llm_gateway.errors import GatewayError, MethodNotAllowed
from llm_gateway.telemetry.exchange import Exchange
from llm_gateway.telemetry.recorder import Telemetry

__all__ = ["ListModels"]

ROUTE = "/v1/models"


class ListModels:
    """Relays the upstream's model list; errors map exactly as for chat completions.

    In the ``keys`` auth mode the caller's key is checked first (nothing is counted against it).
    """

    def __init__(
        self,
        upstream: Upstream,
        *,
        telemetry: Telemetry,
        identify: Identify,
        first_byte_timeout: float | None,
        idle_timeout: float,
        upstream_secret: str,
    ) -> None:
        self._upstream = upstream
        self._telemetry = telemetry
        self._identify = identify
        self._first_byte_timeout = first_byte_timeout
        self._idle_timeout = idle_timeout
        self._secret = upstream_secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = self._telemetry.begin(ROUTE, scope, send)
        try:
            await self._serve(scope, exchange)
        except GatewayError as error:
            exchange.error = error
            await send_error(exchange.send, error)
        finally:
            self._telemetry.end(exchange)

    async def _serve(self, scope: Scope, exchange: Exchange) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            raise MethodNotAllowed("use GET for this endpoint", headers=[(b"allow", b"GET")])
        if self._identify.requires_key:
            exchange.tenant = self._identify(scope)[0]
        headers = forwarded_headers(scope["headers"])
        self._telemetry.start_upstream(exchange, "GET /models", headers)
        response = await open_upstream(
            self._upstream,
            exchange,
            "GET",
            "/models",
            body=None,
            headers=headers,
            first_byte_timeout=self._first_byte_timeout,
        )
        async with response:
            await relay_buffered(response, exchange, idle_timeout=self._idle_timeout, secret=self._secret)
