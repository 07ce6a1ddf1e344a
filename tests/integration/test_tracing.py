"""OpenTelemetry traces exported over OTLP/HTTP to a real receiver, decoded with opentelemetry-proto."""

from __future__ import annotations

import signal

import httpx

from llm_gateway.core.privacy import tenant_hash
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, chat_body, sse_data
from tests.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.support import ManagedProcess, free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
SERVER, CLIENT = 2, 3  # SpanKind values in the OTLP protobuf
STATUS_ERROR = 2
PROMPT = "tell nobody: the launch code is 7421"


def traced(factory: GatewayFactory, receiver: OTLPReceiver, **env: str) -> ManagedProcess:
    return factory(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_SERVICE_NAME="gateway-under-test", **env)


def by_kind(spans: list[ReceivedSpan], kind: int) -> list[ReceivedSpan]:
    return [span for span in spans if span.kind == kind]


def test_a_request_gives_a_server_span_and_an_upstream_child_in_the_callers_trace(
    gateway_factory: GatewayFactory, mock: ManagedProcess, otlp_receiver: OTLPReceiver
) -> None:
    gateway = traced(gateway_factory, otlp_receiver)
    response = httpx.post(
        gateway.url + CHAT,
        json=chat_body(PROMPT, model="mock:echo", max_tokens=64, temperature=0.2),
        headers={"X-Api-Key": "trace-tenant", "traceparent": TRACEPARENT},
    )
    assert response.status_code == 200
    spans = otlp_receiver.wait_for(2)
    [server] = by_kind(spans, SERVER)
    [client] = by_kind(spans, CLIENT)
    assert server.service_name == "gateway-under-test"
    assert server.name == f"POST {CHAT}"
    assert (server.trace_id, server.parent_span_id) == (TRACE_ID, PARENT_ID)
    assert (client.trace_id, client.parent_span_id) == (TRACE_ID, server.span_id)
    upstream = httpx.get(mock.url + "/_mock/last-request").json()
    assert upstream["headers"]["traceparent"] == f"00-{TRACE_ID}-{client.span_id}-01"

    attributes = server.attributes
    assert attributes["tenant"] == tenant_hash("trace-tenant")
    assert attributes["model"] == "mock:echo"
    assert attributes["http.status_code"] == 200
    assert attributes["gen_ai.system"] == "openai"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "mock:echo"
    assert attributes["gen_ai.response.model"] == "mock:echo"
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.usage.input_tokens"] == 7
    assert attributes["gen_ai.usage.output_tokens"] == 7
    assert "error" not in attributes
    assert client.name == "chat mock:echo"
    assert client.attributes["http.response.status_code"] == 200
    exported = b"".join(otlp_receiver.raw)
    assert b"launch code" not in exported  # neither the prompt nor the echoed completion
    assert b"trace-tenant" not in exported


def test_a_stream_span_has_its_usage_and_outcome(
    gateway_factory: GatewayFactory, mock: ManagedProcess, otlp_receiver: OTLPReceiver
) -> None:
    gateway = traced(gateway_factory, otlp_receiver)
    response = httpx.post(gateway.url + CHAT, json=chat_body("one two three", model="mock:echo", stream=True))
    assert sse_data(response.content)[-1] == "[DONE]"
    [server] = by_kind(otlp_receiver.wait_for(2), SERVER)
    assert server.parent_span_id == ""  # no caller context: a new trace
    assert server.attributes["tenant"] == "anonymous"
    assert server.attributes["gateway.stream.outcome"] == "completed"
    assert server.attributes["gen_ai.usage.output_tokens"] == 3


def test_429_and_504_are_marked_as_errors(
    gateway_factory: GatewayFactory, mock: ManagedProcess, otlp_receiver: OTLPReceiver
) -> None:
    gateway = traced(gateway_factory, otlp_receiver, TENANT_QUOTAS="capped=0", TIMEOUT_SECS="0.5")
    refused = httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "capped"})
    assert refused.status_code == 429
    timed_out = httpx.post(gateway.url + CHAT, json=chat_body(model="mock:latency-ms=3000"), timeout=10)
    assert timed_out.status_code == 504
    servers = {
        span.attributes["http.status_code"]: span for span in by_kind(otlp_receiver.wait_for(3), SERVER)
    }
    assert set(servers) == {429, 504}
    for status, code in ((429, "quota_exceeded"), (504, "upstream_timeout")):
        span = servers[status]
        assert span.attributes["error"] is True
        assert span.attributes["error.type"] == code
        assert span.status_code == STATUS_ERROR
    assert servers[429].attributes["tenant"] == tenant_hash("capped")


def test_an_absent_collector_costs_requests_nothing_and_does_not_hold_up_shutdown(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    gateway = gateway_factory(OTEL_EXPORTER_OTLP_ENDPOINT=nowhere)
    with httpx.Client(base_url=gateway.url) as client:
        for i in range(200):
            assert client.post(CHAT, json=chat_body(stream=i % 2 == 0)).status_code == 200
    # Exits on its own after SIGTERM (uvicorn re-raises the signal once shut down), never SIGKILLed.
    assert gateway.stop(grace=10) == -signal.SIGTERM
    assert "Traceback" not in gateway.log_path.read_text()


def test_without_tracing_the_callers_trace_context_passes_through(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    headers = {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    assert httpx.post(gateway.url + CHAT, json=chat_body(), headers=headers).status_code == 200
    upstream = httpx.get(mock.url + "/_mock/last-request").json()["headers"]
    assert (upstream["traceparent"], upstream["tracestate"]) == (TRACEPARENT, "vendor=1")
