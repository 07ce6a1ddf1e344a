"""The fault matrix: each fault against real processes; afterwards nothing leaks and the gateway serves.

"Nothing leaks" is measured on the gateway process: the in-flight gauge returns to 0 and its open file
descriptors, not counting its pooled connections to the upstream, Redis and the collector (kept on
purpose, bounded by their pools), return to what they were before the fault.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, assert_openai_error, chat_body, metric_value, sse_data
from tests.k8s.operator_support import eventually
from tests.support import ManagedProcess, RedisServer, free_port

FAULT_SETTINGS = {"STREAM_IDLE_TIMEOUT_SECS": "1", "STREAM_KEEPALIVE_SECS": "0.3", "TIMEOUT_SECS": "3"}


class Watch:
    """A gateway with its own resource baseline, taken after a warm-up."""

    def __init__(self, gateway: ManagedProcess, pooled_ports: set[int]) -> None:
        self.gateway = gateway
        self._process = psutil.Process(gateway.proc.pid)
        self._pooled_ports = pooled_ports
        self.serves()
        with httpx.stream("POST", gateway.url + CHAT, json=chat_body(stream=True)) as response:
            response.read()
        self.baseline = eventually(self._settled, timeout=5, what="a quiet gateway")

    def _client_side_fds(self) -> int:
        pooled = sum(
            1
            for connection in self._process.net_connections("tcp")
            if connection.raddr and connection.raddr.port in self._pooled_ports
        )
        return self._process.num_fds() - pooled

    def _settled(self) -> int | None:
        if metric_value(self.gateway.url, "inflight_requests") != 0:
            return None
        return self._client_side_fds()

    def serves(self) -> None:
        response = httpx.post(self.gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "after"})
        assert response.status_code == 200, response.text

    def back_to_baseline(self) -> None:
        self.serves()
        eventually(lambda: self._settled() == self.baseline, timeout=10, what=f"{self.baseline} fds again")
        assert "Traceback" not in self.gateway.output()


@pytest.fixture
def watched(gateway_factory: GatewayFactory, mock: ManagedProcess) -> Watch:
    return Watch(gateway_factory(**FAULT_SETTINGS), {mock.port})


def stream_payloads(gateway: ManagedProcess, model: str) -> list[str]:
    with httpx.stream("POST", gateway.url + CHAT, json=chat_body(model=model, stream=True), timeout=10) as r:
        assert r.status_code == 200
        return sse_data(r.read().decode("utf-8", "replace").encode())  # garbage in, garbage relayed


# --- the upstream ---------------------------------------------------------------------------------


def test_upstream_refusing_connections(gateway_factory: GatewayFactory, mock: ManagedProcess) -> None:
    gateway = gateway_factory(upstream=f"http://127.0.0.1:{free_port()}", **FAULT_SETTINGS)
    response = httpx.post(gateway.url + CHAT, json=chat_body())
    assert_openai_error(response, 502, "upstream_unavailable")
    assert metric_value(gateway.url, "inflight_requests") == 0
    before = psutil.Process(gateway.proc.pid).num_fds()
    for _ in range(20):
        assert httpx.post(gateway.url + CHAT, json=chat_body()).status_code == 502
    eventually(lambda: psutil.Process(gateway.proc.pid).num_fds() <= before, what="no fds left behind")


def test_upstream_reset_before_headers(watched: Watch) -> None:
    response = httpx.post(watched.gateway.url + CHAT, json=chat_body(model="mock:drop-after=0"))
    assert_openai_error(response, 502)
    watched.back_to_baseline()


def test_upstream_reset_mid_stream(watched: Watch) -> None:
    payloads = stream_payloads(watched.gateway, "mock:drop-after=3,inter-token-ms=5")
    assert '"error"' in payloads[-1] and "[DONE]" not in payloads
    watched.back_to_baseline()


def test_garbage_instead_of_sse(watched: Watch) -> None:
    # Relayed as framed (SSE is the upstream's to get right), and ended when the upstream ends.
    payloads = stream_payloads(watched.gateway, "mock:garbage")
    assert "data: not json at all" not in payloads and "not json at all" in payloads
    assert "{" * 5000 in payloads
    watched.back_to_baseline()


def test_a_stream_that_never_ends_is_cut_by_the_idle_timeout(watched: Watch) -> None:
    started = time.monotonic()
    payloads = stream_payloads(watched.gateway, "mock:inter-token-ms=60000")
    assert "stream_idle_timeout" in payloads[-1]
    assert time.monotonic() - started < 5
    watched.back_to_baseline()


@pytest.mark.parametrize(("upstream_status", "status"), [(429, 429), (503, 502), (500, 502)])
def test_error_storms(watched: Watch, upstream_status: int, status: int) -> None:
    def one(_: int) -> int:
        body = chat_body(model=f"mock:status={upstream_status}")
        return httpx.post(watched.gateway.url + CHAT, json=body, timeout=10).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(100)))
    assert set(statuses) == {status}
    watched.back_to_baseline()


# --- Redis and the collector ----------------------------------------------------------------------


def test_redis_killed_and_restarted_under_load(
    gateway_factory: GatewayFactory, mock: ManagedProcess, redis_server: RedisServer
) -> None:
    watch = Watch(
        gateway_factory(REDIS_URL=redis_server.url, REDIS_TIMEOUT_MS="100", **FAULT_SETTINGS),
        {mock.port, redis_server.port},
    )
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                response = client.post(watch.gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "k"})
                statuses.append(response.status_code)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    redis_server.kill()
    time.sleep(1.5)
    redis_server.start()
    time.sleep(2.0)  # the heartbeat finds Redis again
    stop.set()
    for worker in workers:
        worker.join()
    assert statuses and set(statuses) == {200}  # QUOTA_FAILURE_MODE=local keeps admitting
    watch.back_to_baseline()
    redis_connections = [
        c
        for c in psutil.Process(watch.gateway.proc.pid).net_connections("tcp")
        if c.raddr and c.raddr.port == redis_server.port
    ]
    assert len(redis_connections) <= 32  # the pool's bound


def test_collector_down(gateway_factory: GatewayFactory, mock: ManagedProcess) -> None:
    collector = free_port()
    watch = Watch(
        gateway_factory(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector}", **FAULT_SETTINGS),
        {mock.port, collector},
    )
    for _ in range(50):
        watch.serves()
    watch.back_to_baseline()


# --- the client -------------------------------------------------------------------------------------


def leave_during_body(gateway: ManagedProcess) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\n"
            b'Content-Length: 5000\r\n\r\n{"model": "gpt-4o-mini", "messages": ['
        )
        time.sleep(0.2)


def leave_before_the_first_byte(gateway: ManagedProcess) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gateway.url + CHAT, json=chat_body(model="mock:latency-ms=2000"), timeout=0.3)


def leave_mid_stream(gateway: ManagedProcess) -> None:
    body = chat_body("word " * 200, model="mock:echo,inter-token-ms=20", stream=True)
    with httpx.stream("POST", gateway.url + CHAT, json=body) as response:
        next(response.iter_bytes())


def leave_before_reading_the_answer(gateway: ManagedProcess) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )


@pytest.mark.parametrize(
    "leave",
    [leave_during_body, leave_before_the_first_byte, leave_mid_stream, leave_before_reading_the_answer],
    ids=lambda leave: leave.__name__,
)
def test_client_disconnects_at_every_phase(watched: Watch, leave: Callable[[ManagedProcess], None]) -> None:
    for _ in range(5):
        leave(watched.gateway)
    watched.back_to_baseline()
