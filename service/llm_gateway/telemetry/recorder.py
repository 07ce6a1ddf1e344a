"""Per-request telemetry for the proxy endpoints: an :class:`Exchange` in, metrics and spans out.

An endpoint calls :meth:`Telemetry.begin` first, :meth:`Telemetry.end` in a ``finally``, and in
between fills the exchange in. With tracing off, no span work is done at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue
from starlette.types import Scope, Send

from llm_gateway.core.headers import caller_request_id, header
from llm_gateway.telemetry.exchange import FAILED_STREAMS, Exchange
from llm_gateway.telemetry.labels import BoundedLabel, TenantNames
from llm_gateway.telemetry.logs import AccessLog, access_record
from llm_gateway.telemetry.metrics import GatewayMetrics
from llm_gateway.telemetry.tracing import Tracing

__all__ = ["Telemetry"]

#: Request parameters copied onto spans, as GenAI attributes. Never messages or other content.
_REQUEST_PARAMETERS = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
}
_UNKNOWN_MODEL = "unknown"


class Telemetry:
    """Metrics always; spans when ``tracing`` is given; an access line per request to ``access_log``."""

    def __init__(
        self,
        metrics: GatewayMetrics,
        tracing: Tracing | None,
        *,
        tenants: TenantNames,
        models: BoundedLabel,
        access_log: AccessLog | None,
    ) -> None:
        self.metrics = metrics
        self._tracing = tracing
        self._tenants = tenants
        self._models = models
        self._access = access_log

    def begin(self, route: str, scope: Scope, send: Send) -> Exchange:
        """Start recording a request to ``route``; use the exchange's ``send`` from here on."""
        exchange = Exchange(route, scope["method"], send, caller_request_id(header(scope, b"x-request-id")))
        self.metrics.requests[route].inc()
        self.metrics.inflight += 1
        if self._tracing is not None:
            exchange.server_span = self._tracing.start_server_span(
                f"{scope['method']} {route}",
                header(scope, b"traceparent"),
                header(scope, b"tracestate"),
                {
                    "http.request.method": scope["method"],
                    "http.route": route,
                    "gateway.request_id": exchange.request_id,
                },
            )
        return exchange

    def describe_request(self, exchange: Exchange, payload: Mapping[str, Any]) -> None:
        """Put the request's model parameters on its span (never its messages)."""
        span = exchange.server_span
        if span is None or not span.is_recording():
            return
        attributes: dict[str, AttributeValue] = {}
        for field, attribute in _REQUEST_PARAMETERS.items():
            value = payload.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attributes[attribute] = value
        span.set_attributes(attributes)

    def start_upstream(
        self, exchange: Exchange, name: str, headers: dict[str, str], address: tuple[str, int]
    ) -> None:
        """Open the client span of the upstream call to ``address`` (host, port) and put its trace
        context into ``headers``."""
        if self._tracing is None or exchange.server_span is None:
            return
        host, port = address
        attributes: dict[str, AttributeValue] = {
            "server.address": host,
            "server.port": port,
            "gateway.attempt": exchange.attempts,
        }
        if exchange.deployment is not None:
            attributes["gateway.deployment"] = exchange.deployment
        if exchange.model is not None:
            attributes["gen_ai.request.model"] = exchange.model
        exchange.client_span = self._tracing.start_client_span(
            name, exchange.server_span, attributes, headers
        )

    def end_attempt(self, exchange: Exchange, outcome: str, *, relayed: bool) -> None:
        """Note an upstream attempt's outcome on its client span; a span of an attempt that is not
        relayed (a retry or a fallback follows) ends here, as a failed child of the request's span."""
        span = exchange.client_span
        if span is None or span is exchange.server_span or not span.is_recording():
            return
        span.set_attribute("gateway.attempt.outcome", outcome)
        if relayed:
            return
        if exchange.upstream_status is not None:
            span.set_attribute("http.response.status_code", exchange.upstream_status)
        span.set_status(StatusCode.ERROR, outcome)
        span.end()
        exchange.client_span = None

    def end(self, exchange: Exchange) -> None:
        """Record the ended request: metrics, then its spans' final attributes."""
        self.metrics.inflight -= 1
        model = self._models(exchange.model) if exchange.model is not None else _UNKNOWN_MODEL
        tenant = None
        if self.metrics.per_tenant and exchange.tenant is not None:
            tenant = self._tenants.label(exchange.tenant)
        self.metrics.observe(exchange, model, tenant)
        if self._access is not None:
            shown = self._tenants.attribute(exchange.tenant) if exchange.tenant is not None else None
            self._access.write(access_record(exchange, shown))
        span = exchange.server_span
        if span is not None:
            if span.is_recording():
                self._end_spans(exchange)
            else:
                span.end()

    def _end_spans(self, exchange: Exchange) -> None:
        server = exchange.server_span
        assert server is not None
        status = exchange.status
        attributes: dict[str, AttributeValue] = {}
        if status:
            attributes["http.status_code"] = status  # the name the replaced gateway's users filter on
        if exchange.tenant is not None:
            attributes["tenant"] = self._tenants.attribute(exchange.tenant)
        if exchange.model is not None:
            attributes["model"] = attributes["gen_ai.request.model"] = exchange.model
        if exchange.operation is not None and exchange.system is not None:
            attributes["gen_ai.operation.name"] = exchange.operation
            attributes["gen_ai.system"] = exchange.system
        if exchange.response_model is not None:
            attributes["gen_ai.response.model"] = exchange.response_model
        if exchange.usage is not None:
            attributes["gen_ai.usage.input_tokens"] = exchange.usage.input_tokens
            attributes["gen_ai.usage.output_tokens"] = exchange.usage.output_tokens
        if exchange.stream_outcome is not None:
            attributes["gateway.stream.outcome"] = exchange.stream_outcome
        if exchange.upstream_request_id is not None:
            attributes["gateway.upstream.request_id"] = exchange.upstream_request_id
        if exchange.attempts:
            attributes["gateway.attempts"] = exchange.attempts
            if exchange.deployment is not None:
                attributes["gateway.deployment"] = exchange.deployment
        failed = status == 429 or status >= 500 or exchange.stream_outcome in FAILED_STREAMS
        if failed:
            attributes["error"] = True
            if exchange.error is not None:
                attributes["error.type"] = exchange.error.code
        server.set_attributes(attributes)
        if failed:
            server.set_status(StatusCode.ERROR, exchange.error.code if exchange.error else None)
        client = exchange.client_span
        if client is not None:
            if exchange.upstream_status is not None:
                client.set_attribute("http.response.status_code", exchange.upstream_status)
                if exchange.upstream_status >= 400:
                    client.set_status(StatusCode.ERROR)
            client.end()
        server.end()
