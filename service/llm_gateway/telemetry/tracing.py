"""OpenTelemetry traces over OTLP/HTTP: one server span per proxied request, one client span upstream.

Spans are made by hand rather than by the ASGI auto-instrumentation, which opens a span for every
ASGI message (one per streamed event) and costs more than the whole proxy (see PERF-NOTES). Export
runs on the SDK's batch thread with a bounded queue. Making a span costs the request itself about
0.15 ms (bench/telemetry_bench.py), so while the collector is failing or stalled no spans are made
at all (the caller's trace context still passes to the upstream): an absent collector makes
requests cheaper, not slower. Only the W3C trace context is read and written; the tracer provider
belongs to the app (nothing global), and prompts and completions are never recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind, TraceState, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes, AttributeValue

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


class _ExportHealth(SpanExporter):
    """The OTLP exporter, watched: is the collector taking spans right now?

    It is not after a failed export (for ``retry_after`` seconds, then spans are tried again), nor
    while one export has been running for longer than ``stall_after`` seconds (the exporter retries
    a refused batch with backoff for up to its timeout before it reports the failure).
    """

    def __init__(self, inner: SpanExporter, *, stall_after: float, retry_after: float) -> None:
        self._inner = inner
        self._stall_after = stall_after
        self._retry_after = retry_after
        self._export_started: float | None = None
        self._failed_until = 0.0

    @property
    def accepting(self) -> bool:
        now = time.monotonic()
        started = self._export_started
        if started is not None and now - started > self._stall_after:
            return False
        return now >= self._failed_until

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._export_started = time.monotonic()
        try:
            result = self._inner.export(spans)
        finally:
            self._export_started = None
        if result is not SpanExportResult.SUCCESS:
            self._failed_until = time.monotonic() + self._retry_after
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _WhileCollectorAccepts(Sampler):
    """``inner``'s decision while the collector takes spans; drop (no span made) while it does not."""

    def __init__(self, health: _ExportHealth, inner: Sampler) -> None:
        self._health = health
        self._inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        sampler = self._inner if self._health.accepting else ALWAYS_OFF
        return sampler.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"WhileCollectorAccepts{{{self._inner.get_description()}}}"


class Tracing:
    """Starts spans and exports them to ``{endpoint}/v1/traces`` as ``service_name``.

    The exporter's own environment settings still apply (``OTEL_EXPORTER_OTLP_HEADERS``,
    ``OTEL_EXPORTER_OTLP_TIMEOUT``, …), and so do the SDK's sampler and resource settings
    (``OTEL_TRACES_SAMPLER``, ``OTEL_RESOURCE_ATTRIBUTES``).
    """

    def __init__(self, endpoint: str, service_name: str) -> None:
        resource = Resource.create({"service.name": service_name, "service.version": __version__})
        self._provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.exporter = _ExportHealth(
            OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"), stall_after=2.0, retry_after=30.0
        )
        # The provider's own sampler is the one the OTEL_TRACES_SAMPLER* variables chose.
        self._provider.sampler = _WhileCollectorAccepts(self.exporter, self._provider.sampler)
        self._provider.add_span_processor(
            BatchSpanProcessor(self.exporter, max_queue_size=MAX_QUEUED_SPANS, schedule_delay_millis=1000)
        )
        self._tracer = self._provider.get_tracer("llm_gateway", __version__)
        # With the collector away, the SDK warns once per dropped span: thousands of lines a second.
        # The SDK's batch worker and the exporter log each failure and retry; while a collector is
        # away, one line a minute from each says so.
        for noisy in (
            "opentelemetry.sdk._shared_internal",
            "opentelemetry.exporter.otlp.proto.http.trace_exporter",  # the exporter's retries
        ):
            logging.getLogger(noisy).addFilter(_AtMostEvery(60.0))
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
        """A client span under ``parent``; its trace context is written into ``headers`` for the upstream.

        Under a parent that is not recorded (sampled out, or the collector is away) no span is made:
        the parent's context goes upstream, and ``parent`` itself is returned.
        """
        span = parent
        if parent.is_recording():
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
