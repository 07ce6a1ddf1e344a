"""When Redis dies or hangs: the failure modes, bounded waits, and recovery without restarts."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from llm_gateway.core.quota import quota_key
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, assert_openai_error, chat_body, metric_value
from tests.support import ManagedProcess, RedisServer

LOOSE_RATE = {"RPS": "100000", "BURST": "100000"}


class Load:
    """Background requests (bounded by ``stop()``), recording status and latency of each."""

    def __init__(self, gateways: list[ManagedProcess]) -> None:
        self.results: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(g,)) for g in gateways]
        for thread in self._threads:
            thread.start()

    def _run(self, gateway: ManagedProcess) -> None:
        with httpx.Client(timeout=10) as client:
            for i in range(2000):
                if self._stop.is_set():
                    return
                started = time.monotonic()
                response = client.post(
                    gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": f"load{i}"}
                )
                self.results.append((response.status_code, time.monotonic() - started))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def send(gateway: ManagedProcess, key: str) -> httpx.Response:
    return httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": key}, timeout=10)


def replicas_seen(gateways: list[ManagedProcess], redis_server: RedisServer, count: int) -> None:
    deadline = time.monotonic() + 5
    while redis_server.client().zcard("gateway_replicas") < count:
        assert time.monotonic() < deadline, "replicas did not register"
        time.sleep(0.1)
    time.sleep(1.2)  # one more heartbeat, so every replica has read the count


def wait_redis_ok(gateway: ManagedProcess, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(gateway.url + "/readyz").json()["checks"]["redis"] != "ok":
        assert time.monotonic() < deadline, "gateway did not return to Redis"
        time.sleep(0.1)


@pytest.mark.parametrize("mode", ["local", "open", "closed"])
def test_redis_killed_mid_load_applies_the_failure_mode_then_recovers(
    gateway_factory: GatewayFactory, redis_server: RedisServer, mode: str
) -> None:
    gateways = [
        gateway_factory(REDIS_URL=redis_server.url, QUOTA_FAILURE_MODE=mode, DEFAULT_QUOTA="10", **LOOSE_RATE)
        for _ in range(2)
    ]
    replicas_seen(gateways, redis_server, 2)
    load = Load(gateways)
    time.sleep(0.5)
    redis_server.kill()
    time.sleep(0.5)
    try:
        outage = [[send(g, "fallback") for _ in range(8)] for g in gateways]
    finally:
        time.sleep(0.3)
        load.stop()
    latencies = [latency for _, latency in load.results]
    assert load.results and max(latencies) < 1.0, max(latencies)  # nobody waits on a dead Redis
    for gateway, responses in zip(gateways, outage, strict=True):
        codes = [r.status_code for r in responses]
        if mode == "local":
            assert codes == [200] * 5 + [429] * 3  # ceil(10 / 2 replicas) each, never 10 each
            assert responses[0].headers["x-ratelimit-limit-requests"] == "5"
        elif mode == "open":
            assert codes == [200] * 8
            assert "x-ratelimit-limit-requests" not in responses[0].headers
        else:
            for response in responses:
                assert_openai_error(response, 503, "quota_backend_unavailable")
            assert metric_value(gateway.url, 'quota_block_total{reason="backend_unavailable"}') >= 8
        ready = httpx.get(gateway.url + "/readyz")
        assert ready.status_code == (503 if mode == "closed" else 200)
        assert ready.json()["checks"]["redis"] == f"unavailable (QUOTA_FAILURE_MODE={mode})"
        assert httpx.get(gateway.url + "/healthz").status_code == 200
        assert metric_value(gateway.url, "quota_backend_errors_total") >= 1
        assert gateway.output().count("quota backend unavailable") == 1  # logged once, not per request

    redis_server.start()  # same port, empty: the gateways must find it again by themselves
    for gateway in gateways:
        wait_redis_ok(gateway)
        assert send(gateway, "after").status_code == 200
    assert redis_server.client().get(quota_key("after")) == b"2"
    for gateway in gateways:
        assert "quota backend available" in gateway.output().rsplit("quota backend unavailable", 1)[1]


def test_hung_redis_costs_a_request_at_most_the_timeout(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    # A timeout long enough that a request which waited for it cannot be mistaken for one that was
    # merely slow on a loaded machine (a 300 ms timeout made this test fail under load).
    gateway = gateway_factory(
        REDIS_URL=redis_server.url, REDIS_TIMEOUT_MS="1500", DEFAULT_QUOTA="4", **LOOSE_RATE
    )
    replicas_seen([gateway], redis_server, 1)
    redis_server.freeze()
    try:
        timings = []
        codes = []
        for _ in range(6):
            started = time.monotonic()
            codes.append(send(gateway, "hung").status_code)
            timings.append(time.monotonic() - started)
    finally:
        redis_server.thaw()
    assert max(timings) < 1.5 + 1.0, timings
    assert sum(t >= 1.5 for t in timings) <= 1, timings  # only the request that found Redis hung waited
    assert Counter(codes) == {200: 4, 429: 2}  # local fallback, one replica: the whole quota
    wait_redis_ok(gateway)
