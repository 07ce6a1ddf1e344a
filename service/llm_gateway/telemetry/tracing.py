"""OpenTelemetry traces over OTLP/HTTP: one server span per proxied request, one client span upstream.

Spans are made by hand rather than by the ASGI auto-instrumentation, which opens a span for every
ASGI message (one per streamed event) and costs more than the whole proxy (see PERF-NOTES). Export
runs on the SDK's batch thread with a bounded queue: a slow or absent collector costs dropped
spans, never request latency. Only the W3C trace context is read and written; the tracer provider
belongs to the app (nothing global), and prompts and completions are never recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from llm_gateway import __version__

__all__ = ["Tracing"]

log = logging.getLogger(__name__)

#: Spans waiting for export beyond this are dropped (oldest first) rather than held in memory.
MAX_QUEUED_SPANS = 4096


class _AtMostEvery(logging.Filter):
    """Lets a logger's records through at most once every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self._interval = interval
        self._next = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._interval
        return True


class Tracing:
    """Starts spans and exports them to ``{endpoint}/v1/traces`` as ``service_name``.

    The exporter's own environment settings still apply (``OTEL_EXPORTER_OTLP_HEADERS``,
    ``OTEL_EXPORTER_OTLP_TIMEOUT``, …), and so do the SDK's sampler and resource settings
    (``OTEL_TRACES_SAMPLER``, ``OTEL_RESOURCE_ATTRIBUTES``).
    """

    def __init__(self, endpoint: str, service_name: str) -> None:
        resource = Resource.create({"service.name": service_name, "service.version": __version__})
        self._provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self._provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"),
                max_queue_size=MAX_QUEUED_SPANS,
                schedule_delay_millis=1000,
            )
        )
        self._tracer = self._provider.get_tracer("llm_gateway", __version__)
        # With the collector away, the SDK warns once per dropped span: thousands of lines a second.
        logging.getLogger("opentelemetry.sdk._shared_internal").addFilter(_AtMostEvery(60.0))
        self._propagator = TraceContextTextMapPropagator()

    def start_server_span(
        self,
        name: str,
        traceparent: bytes | None,
        tracestate: bytes | None,
        attributes: Mapping[str, AttributeValue],
    ) -> Span:
        """A server span, child of the caller's W3C trace context when it sent a valid one."""
        parent: Context | None = None
        if traceparent is not None:
            carrier = {"traceparent": traceparent.decode("latin-1")}
            if tracestate is not None:
                carrier["tracestate"] = tracestate.decode("latin-1")
            parent = self._propagator.extract(carrier)
        return self._tracer.start_span(name, parent, SpanKind.SERVER, attributes)

    def start_client_span(
        self, name: str, parent: Span, attributes: Mapping[str, AttributeValue], headers: dict[str, str]
    ) -> Span:
        """A client span under ``parent``; its trace context is written into ``headers`` for the upstream."""
        span = self._tracer.start_span(name, set_span_in_context(parent), SpanKind.CLIENT, attributes)
        headers.pop("tracestate", None)  # the caller's, forwarded when tracing is off; ours replaces it
        self._propagator.inject(headers, set_span_in_context(span))
        return span

    def shutdown(self, wait: float) -> None:
        """Export what is queued, waiting at most ``wait`` seconds (an absent collector must not hold
        up the process's exit)."""
        worker = threading.Thread(target=self._provider.shutdown, name="otel-shutdown", daemon=True)
        worker.start()
        worker.join(wait)
        if worker.is_alive():
            log.warning("trace export did not finish within %.0f s; queued spans are dropped", wait)
