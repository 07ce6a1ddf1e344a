"""Circuit-breaker-lite: first-byte timeout, stream idle and keep-alive, load shedding,
client disconnects and graceful shutdown, all against real processes."""

from __future__ import annotations

import asyncio
import base64
import gzip
import signal
import socket
import threading
import time

import httpx
import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.integration.chat import (
    CHAT,
    assert_openai_error,
    chat_body,
    metric_value,
    sse_data,
    streamed_text,
)
from tests.support import ManagedProcess

SLOW_WORDS = " ".join(f"w{i}" for i in range(20))


def test_first_byte_timeout_answers_504_after_timeout_secs(
    mock_factory, gateway_factory: GatewayFactory
) -> None:  # type: ignore[no-untyped-def]
    slow = mock_factory(LATENCY_MS="4000")
    gateway = gateway_factory(upstream=slow.url, TIMEOUT_SECS="1")
    for stream in (False, True):
        started = time.monotonic()
        response = httpx.post(gateway.url + CHAT, json=chat_body(stream=stream), timeout=10)
        elapsed = time.monotonic() - started
        error = assert_openai_error(response, 504, "upstream_timeout")
        assert error["message"] == "upstream timed out"
        assert 0.9 < elapsed < 2.5, elapsed  # about TIMEOUT_SECS, not LATENCY_MS
    assert metric_value(gateway.url, 'cb_events_total{event="timeout"}') == 2


def test_started_stream_is_not_cut_by_the_first_byte_timeout(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(TIMEOUT_SECS="1")
    body = chat_body("a b c d e f", model="mock:echo,inter-token-ms=400", stream=True)
    started = time.monotonic()
    response = httpx.post(gateway.url + CHAT, json=body, timeout=10)
    assert time.monotonic() - started > 2
    payloads = sse_data(response.content)
    assert payloads[-1] == "[DONE]"
    assert streamed_text(payloads) == "a b c d e f"


def test_quiet_stream_gets_keepalive_comments(gateway_factory: GatewayFactory, mock: ManagedProcess) -> None:
    gateway = gateway_factory(STREAM_KEEPALIVE_SECS="0.25")
    body = chat_body("a b", model="mock:echo,inter-token-ms=700", stream=True)
    response = httpx.post(gateway.url + CHAT, json=body, timeout=10)
    assert response.content.count(b": keep-alive\n\n") >= 4
    payloads = sse_data(response.content)
    assert payloads[-1] == "[DONE]"
    assert streamed_text(payloads) == "a b"


def test_stalled_stream_ends_with_an_idle_timeout_event(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(STREAM_IDLE_TIMEOUT_SECS="1", STREAM_KEEPALIVE_SECS="0.4")
    body = chat_body("a b c", model="mock:echo,inter-token-ms=3000", stream=True)
    started = time.monotonic()
    response = httpx.post(gateway.url + CHAT, json=body, timeout=10)
    assert time.monotonic() - started < 2.5
    payloads = sse_data(response.content)
    assert orjson.loads(payloads[0])["choices"][0]["delta"]["role"] == "assistant"
    assert orjson.loads(payloads[-1])["error"]["code"] == "stream_idle_timeout"
    assert b": keep-alive" in response.content
    # The upstream connection was closed, so the mock sees its stream cancelled.
    assert wait_for_stat(mock, "streams_cancelled", 1)


def wait_for_stat(mock: ManagedProcess, name: str, value: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(mock.url + "/_mock/stats").json()[name] == value:
            return True
        time.sleep(0.05)
    return False


def test_parallel_streams_beyond_max_concurrency_are_shed_with_503(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(MAX_CONCURRENCY="1")
    body = chat_body(SLOW_WORDS, model="mock:echo,inter-token-ms=100", stream=True)

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=20) as client:
            first = asyncio.create_task(client.post(gateway.url + CHAT, json=body))
            await asyncio.sleep(0.3)  # the first stream now holds the only slot for ~2 s
            others = await asyncio.gather(*(client.post(gateway.url + CHAT, json=body) for _ in range(6)))
            return [await first, *others]

    responses = asyncio.run(run())
    assert responses[0].status_code == 200
    assert sse_data(responses[0].content)[-1] == "[DONE]"
    for response in responses[1:]:
        error = assert_openai_error(response, 503, "server_overloaded")
        assert error["message"] == "server overloaded"
    assert metric_value(gateway.url, 'cb_events_total{event="load_shed"}') == 6
    assert httpx.post(gateway.url + CHAT, json=chat_body()).status_code == 200  # slot released


def test_client_leaving_mid_stream_frees_its_slot_and_cancels_the_upstream(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(MAX_CONCURRENCY="1")
    body = chat_body(SLOW_WORDS, model="mock:echo,inter-token-ms=300", stream=True)
    with httpx.stream("POST", gateway.url + CHAT, json=body, timeout=10) as response:
        assert response.status_code == 200
        next(response.iter_raw())  # the stream is flowing; now walk away
    assert wait_for_stat(mock, "streams_cancelled", 1)
    assert httpx.get(mock.url + "/_mock/stats").json()["streams_completed"] == 0
    response = httpx.post(gateway.url + CHAT, json=chat_body())
    assert response.status_code == 200


def test_client_leaving_during_a_slow_first_byte_frees_its_slot_at_once(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(MAX_CONCURRENCY="1")
    try:
        httpx.post(gateway.url + CHAT, json=chat_body(model="mock:latency-ms=5000"), timeout=0.5)
        raise AssertionError("expected the client to time out")
    except httpx.ReadTimeout:
        pass
    time.sleep(0.2)
    started = time.monotonic()
    response = httpx.post(gateway.url + CHAT, json=chat_body())
    assert response.status_code == 200
    assert time.monotonic() - started < 1


def test_sigterm_lets_an_in_flight_stream_finish(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(SHUTDOWN_GRACE_SECS="10")
    body = chat_body("a b c d e f g h", model="mock:echo,inter-token-ms=250", stream=True)
    chunks = []
    with httpx.stream("POST", gateway.url + CHAT, json=body, timeout=10) as response:
        stream = response.iter_raw()
        chunks.append(next(stream))
        gateway.terminate()
        time.sleep(0.5)
        # While draining, the gateway accepts no new connections.
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", gateway.port)) != 0
        chunks.extend(stream)
    payloads = sse_data(b"".join(chunks))
    assert payloads[-1] == "[DONE]"
    assert streamed_text(payloads) == "a b c d e f g h"
    # uvicorn re-raises the SIGTERM it handled once it has drained, so the exit reports the signal.
    assert gateway.proc.wait(10) in (0, -signal.SIGTERM)
    log = gateway.output()
    assert "Traceback" not in log and "ERROR" not in log, log


class SilentUpstream:
    """An upstream that reads whatever it is sent and never answers: the time each connection was
    closed by the gateway is noted in ``closed_at`` (the upstream sees its request cancelled)."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/v1"
        self.closed_at: list[float] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            connection, _ = self._server.accept()
            threading.Thread(target=self._read_until_closed, args=(connection,), daemon=True).start()

    def _read_until_closed(self, connection: socket.socket) -> None:
        with connection:
            while connection.recv(65536):
                pass
        self.closed_at.append(time.monotonic())

    def wait_closed(self, count: int, timeout: float) -> list[float]:
        deadline = time.monotonic() + timeout
        while len(self.closed_at) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.closed_at


def test_a_request_still_waiting_for_its_headers_is_cancelled_upstream_when_the_client_leaves(
    gateway_factory: GatewayFactory,
) -> None:
    upstream = SilentUpstream()
    gateway = gateway_factory(upstream=upstream.url, UPSTREAM_READINESS_PROBE="off")  # only our connections
    for stream in (False, True):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(gateway.url + CHAT, json=chat_body(stream=stream), timeout=0.5)
    left = time.monotonic()
    closed = upstream.wait_closed(2, timeout=5)
    assert len(closed) == 2 and all(at - left < 2.0 for at in closed), closed


def test_a_first_byte_timeout_cancels_the_upstream_request(gateway_factory: GatewayFactory) -> None:
    upstream = SilentUpstream()
    gateway = gateway_factory(upstream=upstream.url, TIMEOUT_SECS="1", UPSTREAM_READINESS_PROBE="off")
    response = httpx.post(gateway.url + CHAT, json=chat_body(), timeout=10)
    assert_openai_error(response, 504, "upstream_timeout")
    answered = time.monotonic()
    closed = upstream.wait_closed(1, timeout=5)
    assert len(closed) == 1 and closed[0] - answered < 1.0, closed


def _script(mock: ManagedProcess, name: str, spec: dict[str, object]) -> str:
    httpx.put(f"{mock.url}/_mock/scripts/{name}", content=orjson.dumps(spec)).raise_for_status()
    return f"mock:script={name}"


def test_an_upstream_answer_beyond_max_response_bytes_is_a_502_compressed_or_not(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(MAX_RESPONSE_BYTES="1048576")
    big = orjson.dumps({"id": "x", "object": "chat.completion", "choices": [], "pad": "a" * 2_000_000})
    bomb = gzip.compress(b"\0" * 64 * 1024 * 1024)  # 64 MiB of zeros in about 64 KB
    answers = {
        "big": {"content_type": "application/json", "writes": [big.decode()]},
        "bomb": {
            "content_type": "application/json",
            "headers": {"content-encoding": "gzip"},
            "writes_b64": [base64.b64encode(bomb).decode()],
        },
    }
    for name, spec in answers.items():
        started = time.monotonic()
        response = httpx.post(gateway.url + CHAT, json=chat_body(model=_script(mock, name, spec)), timeout=30)
        assert_openai_error(response, 502, "upstream_response_too_large")
        assert time.monotonic() - started < 5, name  # stopped at the limit, not after reading it all
    assert httpx.get(gateway.url + "/healthz").status_code == 200


def test_a_streamed_event_beyond_max_response_bytes_ends_the_stream_with_an_error_event(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(MAX_RESPONSE_BYTES="1048576")
    first = 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[]}\n\n'
    endless = "data: " + "a" * 100_000  # a line that never ends, 100 KB per write
    model = _script(mock, "endless-event", {"writes": [first] + [endless] * 30})
    response = httpx.post(gateway.url + CHAT, json=chat_body(model=model, stream=True), timeout=30)
    assert response.status_code == 200
    events = sse_data(response.content)
    assert orjson.loads(events[0])["id"] == "c"
    assert orjson.loads(events[-1])["error"]["code"] == "upstream_response_too_large"
