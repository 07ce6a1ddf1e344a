"""The collector-health gate in front of span making (in-process exporters stand in for the network;
the real OTLP path is tested in tests/integration/test_tracing.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision

from llm_gateway.telemetry.tracing import _ExportHealth, _WhileCollectorAccepts


class Scripted(SpanExporter):
    def __init__(self, result: SpanExportResult, hold: threading.Event | None = None) -> None:
        self.result = result
        self.hold = hold

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.hold is not None:
            self.hold.wait(5)
        return self.result


def decision(health: _ExportHealth) -> Decision:
    return _WhileCollectorAccepts(health, ALWAYS_ON).should_sample(None, 1, "span").decision


def test_spans_are_made_while_exports_succeed() -> None:
    health = _ExportHealth(Scripted(SpanExportResult.SUCCESS), stall_after=1, retry_after=1)
    assert health.export([]) is SpanExportResult.SUCCESS
    assert decision(health) is Decision.RECORD_AND_SAMPLE


def test_a_failed_export_stops_span_making_until_retry_after() -> None:
    health = _ExportHealth(Scripted(SpanExportResult.FAILURE), stall_after=1, retry_after=0.2)
    assert health.export([]) is SpanExportResult.FAILURE
    assert decision(health) is Decision.DROP
    time.sleep(0.25)
    assert decision(health) is Decision.RECORD_AND_SAMPLE  # a probe: spans are tried again


def test_a_stalled_export_stops_span_making_before_it_fails() -> None:
    release = threading.Event()
    health = _ExportHealth(Scripted(SpanExportResult.SUCCESS, release), stall_after=0.1, retry_after=1)
    exporting = threading.Thread(target=health.export, args=([],))
    exporting.start()
    try:
        assert decision(health) is Decision.RECORD_AND_SAMPLE  # not stalled yet
        time.sleep(0.2)
        assert decision(health) is Decision.DROP
    finally:
        release.set()
        exporting.join()
    assert decision(health) is Decision.RECORD_AND_SAMPLE
