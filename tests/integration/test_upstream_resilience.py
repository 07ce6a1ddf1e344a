"""Upstream resilience, for real: model groups over several real mocks with injected faults (a port
that refuses connections, 500s and 503s, a slow upstream, an upstream killed and restarted),
retries, fallbacks, the retry budget and each deployment's circuit breaker, seen through the
official SDK, the mocks' own request counters and the gateway's metrics."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest
import yaml

from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, assert_openai_error, chat_body, metric_value
from tests.k8s.operator_support import eventually
from tests.otlp_receiver import OTLPReceiver
from tests.support import ManagedProcess, free_port, start_mock

MockFactory = Callable[..., ManagedProcess]
MESSAGES: Any = [{"role": "user", "content": "hi"}]
SERVER_KIND, CLIENT_KIND, STATUS_ERROR = 2, 3, 2  # OTLP protobuf values
#: Breakers that open after two failures and stay open one second (the defaults: 5 and 30 s).
FAST_BREAKER = {
    "CIRCUIT_BREAKER_FAILURES": "2",
    "CIRCUIT_BREAKER_MIN_REQUESTS": "20",
    "CIRCUIT_BREAKER_COOLDOWN_SECS": "1",
    "UPSTREAM_RETRY_BACKOFF_MS": "20",
}


def fault(mock: ManagedProcess, directives: str | None, times: int | None = None) -> None:
    """Inject ``directives`` into every request ``mock`` serves (the next ``times``), or clear them."""
    if directives is None:
        httpx.delete(mock.url + "/_mock/fault").raise_for_status()
    else:
        query = f"?times={times}" if times is not None else ""
        httpx.put(mock.url + "/_mock/fault" + query, content=directives).raise_for_status()


def received(mock: ManagedProcess) -> int:
    return int(httpx.get(mock.url + "/_mock/stats").json()["requests"])


def routing(tmp_path: Path, deployments: list[dict[str, Any]], model: str = "gpt-4o") -> Path:
    """A routing file: one openai-compatible upstream per URL, and ``model`` over them."""
    upstreams = {d["url"]: f"up{i}" for i, d in enumerate(deployments)}
    path = tmp_path / "routing.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "upstreams": [
                    {"name": name, "kind": "openai-compatible", "base_url": url}
                    for url, name in upstreams.items()
                ],
                "routes": [
                    {
                        "model": model,
                        "deployments": [
                            {"upstream": upstreams[d["url"]], **{k: v for k, v in d.items() if k != "url"}}
                            for d in deployments
                        ],
                    }
                ],
            }
        )
    )
    return path


def ask(gateway: ManagedProcess, tenant: str = "t", model: str = "gpt-4o", **extra: Any) -> httpx.Response:
    """One chat completion as ``tenant``."""
    return httpx.post(
        gateway.url + CHAT, json=chat_body(model=model), headers={"X-Api-Key": tenant}, timeout=30, **extra
    )


def deployment_state(gateway: ManagedProcess, deployment: str) -> float:
    return metric_value(gateway.url, f'gateway_deployment_state{{deployment="{deployment}"}}')


def breaker_events(gateway: ManagedProcess, event: str) -> float:
    return metric_value(gateway.url, f'cb_events_total{{event="{event}"}}')


def attempts(gateway: ManagedProcess, deployment: str, outcome: str) -> float:
    return metric_value(
        gateway.url, f'gateway_upstream_attempts_total{{deployment="{deployment}",outcome="{outcome}"}}'
    )


@pytest.fixture
def sdk_for() -> Iterator[Callable[[ManagedProcess, str], openai.OpenAI]]:
    clients: list[openai.OpenAI] = []

    def make(gateway: ManagedProcess, tenant: str) -> openai.OpenAI:
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=tenant, max_retries=0, timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_traffic_keeps_succeeding_through_the_healthy_deployment(
    gateway_factory: GatewayFactory,
    mock_factory: MockFactory,
    sdk_for: Callable[[ManagedProcess, str], openai.OpenAI],
    tmp_path: Path,
) -> None:
    """One deployment refuses connections, one answers 503, one is slower than the first-byte
    timeout, one is healthy: every request succeeds, and each failing breaker opens after exactly
    its configured failures."""
    refusing = f"http://127.0.0.1:{free_port()}"
    failing, slow, healthy = mock_factory(), mock_factory(), mock_factory()
    fault(failing, "status=503")
    fault(slow, "latency-ms=3000")
    urls = [refusing, failing.url, slow.url, healthy.url]
    gateway = gateway_factory(
        ROUTING_FILE=str(routing(tmp_path, [{"url": url, "upstream_model": "m"} for url in urls])),
        UPSTREAM_MAX_ATTEMPTS="4",
        TIMEOUT_SECS="0.5",
        CIRCUIT_BREAKER_COOLDOWN_SECS="60",
        **{k: v for k, v in FAST_BREAKER.items() if k != "CIRCUIT_BREAKER_COOLDOWN_SECS"},
    )
    for n in range(30):  # each request its own tenant: every failure counts towards opening
        answer = sdk_for(gateway, f"tenant-{n}").chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert answer.choices[0].message.content
    assert received(healthy) == 30
    for name in ("up0/m", "up1/m", "up2/m"):
        assert deployment_state(gateway, name) == 2, name  # open
        failed = sum(attempts(gateway, name, o) for o in ("connect_error", "server_error", "timeout"))
        assert failed == 2, (name, failed)  # CIRCUIT_BREAKER_FAILURES, then no more calls
    assert deployment_state(gateway, "up3/m") == 0
    assert attempts(gateway, "up3/m", "ok") == 30
    assert breaker_events(gateway, "open") == 3
    assert received(failing) == 2 and received(slow) == 2


def test_one_tenant_alone_cannot_open_a_breaker_on_statuses(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    """Statuses and timeouts may be a request's own doing: failures of one tenant's requests do not
    cut every tenant off; a second tenant's failure shows the upstream is failing for everyone."""
    upstream = mock_factory()
    gateway = gateway_factory(
        ROUTING_FILE=str(routing(tmp_path, [{"url": upstream.url}])),
        UPSTREAM_MAX_ATTEMPTS="1",
        **FAST_BREAKER,
    )
    fault(upstream, "status=503,retry-after=3000")
    for _ in range(8):
        assert_openai_error(ask(gateway, "mallory"), 502, "upstream_error")
    assert breaker_events(gateway, "open") == 0
    fault(upstream, None)
    assert ask(gateway, "alice").status_code == 200
    fault(upstream, "status=503")
    ask(gateway, "mallory"), ask(gateway, "bob")
    assert_openai_error(ask(gateway, "alice"), 503, "upstream_circuit_open")
    assert breaker_events(gateway, "open") == 1


@pytest.fixture
def opened(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> tuple[ManagedProcess, ManagedProcess]:
    """A gateway whose one deployment of gpt-4o (the mock returned) has just opened its breaker: two
    tenants' requests, without retries, got 503 from it, and the clients 502."""
    upstream = mock_factory()
    gateway = gateway_factory(
        ROUTING_FILE=str(routing(tmp_path, [{"url": upstream.url}])),
        UPSTREAM_MAX_ATTEMPTS="1",
        **FAST_BREAKER,
    )
    fault(upstream, "status=503")
    for tenant in ("a", "b"):
        assert_openai_error(ask(gateway, tenant), 502, "upstream_error")
    assert breaker_events(gateway, "open") == 1 and deployment_state(gateway, "up0") == 2
    return gateway, upstream


def test_the_open_breaker_answers_503_without_a_call_then_half_opens_and_closes(
    opened: tuple[ManagedProcess, ManagedProcess],
) -> None:
    gateway, upstream = opened
    started = time.monotonic()
    refused = httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o"))
    assert time.monotonic() - started < 0.5
    assert_openai_error(refused, 503, "upstream_circuit_open")
    assert refused.headers["retry-after"] == "1" and refused.headers["retry-after-ms"] == "1000"
    assert received(upstream) == 2  # no call while open
    # Other models (the default upstream) are not affected.
    assert httpx.post(gateway.url + CHAT, json=chat_body()).status_code == 200
    fault(upstream, None)
    time.sleep(1.1)
    assert deployment_state(gateway, "up0") == 1  # cooled down: the next attempt probes it
    assert httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o")).status_code == 200  # the probe
    assert [breaker_events(gateway, e) for e in ("open", "half_open", "close")] == [1, 1, 1]
    assert deployment_state(gateway, "up0") == 0


def test_a_failed_probe_opens_the_breaker_again(opened: tuple[ManagedProcess, ManagedProcess]) -> None:
    gateway, upstream = opened
    time.sleep(1.1)
    assert httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o")).status_code == 502  # the probe
    assert_openai_error(
        httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o")), 503, "upstream_circuit_open"
    )
    assert [breaker_events(gateway, e) for e in ("open", "half_open", "close")] == [2, 1, 0]
    assert received(upstream) == 3


def test_a_500_is_retried_but_does_not_open_the_breaker(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    """One client's requests that make the upstream fail must not cut every tenant off."""
    upstream = mock_factory()
    gateway = gateway_factory(ROUTING_FILE=str(routing(tmp_path, [{"url": upstream.url}])), **FAST_BREAKER)
    for _ in range(5):
        assert_openai_error(
            httpx.post(gateway.url + CHAT, json=chat_body(model="mock:status=500")), 502, "upstream_error"
        )
    assert received(upstream) == 0  # mock:* models go to the default upstream, not this group
    for _ in range(3):
        fault(upstream, "status=500", times=1)
        assert httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o")).status_code == 200  # retried
    assert received(upstream) == 6
    assert breaker_events(gateway, "open") == 0 and deployment_state(gateway, "up0") == 0


def test_fallback_goes_to_the_next_priority_and_back(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    primary, backup = mock_factory(), mock_factory()
    gateway = gateway_factory(
        ROUTING_FILE=str(
            routing(
                tmp_path,
                [
                    {"url": primary.url, "upstream_model": "big"},
                    {"url": backup.url, "upstream_model": "small", "priority": 1},
                ],
            )
        ),
        **FAST_BREAKER,
    )
    for _ in range(5):
        assert httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o")).status_code == 200
    assert (received(primary), received(backup)) == (5, 0)
    fault(primary, "status=529")
    for n in range(5):
        response = ask(gateway, f"tenant-{n % 2}")
        assert response.status_code == 200 and response.json()["model"] == "small"
    assert received(primary) == 7  # two tenants' failures opened its breaker
    assert httpx.get(backup.url + "/_mock/last-request").json()["body"].count('"small"') == 1
    fault(primary, None)
    time.sleep(1.1)
    for _ in range(3):
        assert httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o")).json()["model"] == "big"


def test_weights_share_the_traffic(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    heavy, light = mock_factory(), mock_factory()
    gateway = gateway_factory(
        ROUTING_FILE=str(
            routing(tmp_path, [{"url": heavy.url, "weight": 3}, {"url": light.url, "weight": 1}])
        )
    )
    with httpx.Client() as client:
        for _ in range(400):
            assert client.post(gateway.url + CHAT, json=chat_body(model="gpt-4o")).status_code == 200
    assert received(heavy) / 400 == pytest.approx(0.75, abs=0.07)


def test_a_slow_deployment_gets_fewer_requests_under_concurrency(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    """Equal weights, one deployment ten times slower: with 8 clients its attempts pile up in flight
    and least-in-flight sends most new ones to the fast deployment."""
    fast, slow = mock_factory(), mock_factory()
    fault(slow, "latency-ms=200")
    fault(fast, "latency-ms=20")
    gateway = gateway_factory(ROUTING_FILE=str(routing(tmp_path, [{"url": fast.url}, {"url": slow.url}])))

    def client(_: int) -> None:
        with httpx.Client(timeout=10) as http:
            for _ in range(25):
                assert http.post(gateway.url + CHAT, json=chat_body(model="gpt-4o")).status_code == 200

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client, range(8)))
    assert received(fast) + received(slow) == 200
    assert received(fast) > 0.8 * 200, (received(fast), received(slow))


def test_retry_after_from_the_upstream_delays_the_retry(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    upstream = mock_factory()
    gateway = gateway_factory(ROUTING_FILE=str(routing(tmp_path, [{"url": upstream.url}])), **FAST_BREAKER)
    for directive, wait in (("retry-after=1", 1.0), ("retry-after-ms=600", 0.6)):
        fault(upstream, f"status=429,{directive}", times=1)
        started = time.monotonic()
        response = httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o"), timeout=10)
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert wait <= elapsed < wait + 0.5, elapsed
        assert float(response.headers["x-gateway-overhead-ms"]) < 300  # the wait is the upstream's
    assert received(upstream) == 4
    # A wait past the retry deadline is not waited: the upstream's 429 goes to the client at once.
    deadline_gateway = gateway_factory(
        ROUTING_FILE=str(routing(tmp_path, [{"url": upstream.url}])), UPSTREAM_RETRY_DEADLINE_SECS="2"
    )
    fault(upstream, "status=429,retry-after=30", times=1)
    started = time.monotonic()
    response = httpx.post(deadline_gateway.url + CHAT, json=chat_body(model="gpt-4o"))
    assert time.monotonic() - started < 1
    assert response.status_code == 429 and response.headers["retry-after"] == "30"


def test_the_retry_budget_caps_retries_when_every_upstream_fails(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    first, second = mock_factory(), mock_factory()
    gateway = gateway_factory(
        ROUTING_FILE=str(routing(tmp_path, [{"url": first.url}, {"url": second.url}])),
        UPSTREAM_RETRY_BUDGET_RATIO="0.1",
        UPSTREAM_RETRY_BUDGET_MIN_PER_SEC="0",
        UPSTREAM_RETRY_BACKOFF_MS="0",
    )  # the breakers stay closed (the test gateways' default), so only the budget limits retries
    for mock in (first, second):
        fault(mock, "status=503")
    with httpx.Client() as client:
        statuses = Counter(
            client.post(gateway.url + CHAT, json=chat_body(model="gpt-4o")).status_code for _ in range(100)
        )
    assert statuses == {502: 100}
    calls = received(first) + received(second)
    assert 100 < calls <= 110, calls  # without the budget: 300
    # Every request stopped at the budget (the few that got one retry, at their second).
    assert metric_value(gateway.url, "gateway_retry_budget_exhausted_total") == 100


def test_the_client_leaving_stops_the_retries(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    upstream = mock_factory()
    gateway = gateway_factory(
        ROUTING_FILE=str(routing(tmp_path, [{"url": upstream.url}])), UPSTREAM_RETRY_BACKOFF_MS="2000"
    )
    fault(upstream, "status=503,retry-after=2")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o"), timeout=0.5)
    time.sleep(3)
    assert received(upstream) == 1
    assert metric_value(gateway.url, "inflight_requests") == 0


def test_quota_counts_one_unit_however_many_attempts(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    first, second = mock_factory(), mock_factory()
    gateway = gateway_factory(
        ROUTING_FILE=str(routing(tmp_path, [{"url": first.url}, {"url": second.url}])), DEFAULT_QUOTA="4"
    )
    fault(first, "status=503", times=1)
    fault(second, "status=503", times=1)
    responses = [
        httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o"), headers={"X-Api-Key": "q"})
        for _ in range(3)
    ]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert received(first) + received(second) == 5  # the first request took three attempts
    assert responses[0].headers["x-ratelimit-remaining-requests"] == "3"
    # All attempts failing: the unit comes back.
    fault(first, "status=503")
    fault(second, "status=503")
    assert (
        httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o"), headers={"X-Api-Key": "q"}).status_code
        == 502
    )
    assert metric_value(gateway.url, 'quota_refunds_total{reason="upstream_error"}') == 1


def test_each_attempt_is_a_child_span_and_the_access_line_names_the_deployment(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path, otlp_receiver: OTLPReceiver
) -> None:
    failing, healthy = mock_factory(), mock_factory()
    fault(failing, "status=503")
    group = [
        {"url": failing.url, "upstream_model": "a"},
        {"url": healthy.url, "upstream_model": "b", "priority": 1},
    ]
    gateway = gateway_factory(
        ROUTING_FILE=str(routing(tmp_path, group)), OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url
    )
    response = httpx.post(
        gateway.url + CHAT, json=chat_body(model="gpt-4o"), headers={"X-Request-Id": "resilient-1"}
    )
    assert response.status_code == 200
    spans = otlp_receiver.wait_for(3)
    [server] = [span for span in spans if span.kind == SERVER_KIND]
    clients = sorted(
        (span for span in spans if span.kind == CLIENT_KIND),
        key=lambda span: span.attributes["gateway.attempt"],
    )
    assert [
        (span.attributes["gateway.deployment"], span.attributes["gateway.attempt.outcome"], span.status_code)
        for span in clients
    ] == [("up0/a", "server_error", STATUS_ERROR), ("up1/b", "ok", 0)]
    assert all(span.parent_span_id == server.span_id for span in clients)
    assert server.attributes["gateway.attempts"] == 2 and server.attributes["gateway.deployment"] == "up1/b"
    access = eventually(lambda: access_line(gateway, "resilient-1"), 5, "the access line")
    assert (access["attempts"], access["deployment"]) == (2, "up1/b"), access


def access_line(gateway: ManagedProcess, request_id: str) -> dict[str, Any] | None:
    for line in gateway.output().splitlines():
        if line.startswith("{") and f'"{request_id}"' in line:
            record = json.loads(line)
            if record.get("request_id") == request_id:
                return dict(record)
    return None


def test_chaos_an_upstream_killed_under_load_and_restarted(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, workdir: Path, tmp_path: Path
) -> None:
    """16 clients against a group of two; one upstream is killed mid-run and restarted on its port:
    no request that had not started streaming fails, streams cut by the kill end with the API's
    error event, the breaker opens and later closes, and nothing leaks."""
    steady = mock_factory(INTER_TOKEN_MS="20")
    port = free_port()
    victim = start_mock(workdir, port=port, INTER_TOKEN_MS="20")
    gateway = gateway_factory(
        ROUTING_FILE=str(routing(tmp_path, [{"url": steady.url}, {"url": victim.url}])),
        **FAST_BREAKER,
    )
    process = psutil.Process(gateway.proc.pid)
    fds_before = process.num_fds()
    stop = threading.Event()
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def client(index: int) -> None:
        with httpx.Client(timeout=30) as http:
            n = 0
            while not stop.is_set() and n < 400:  # bounded
                n += 1
                stream = (index + n) % 2 == 0
                body = chat_body(model="gpt-4o", stream=stream)
                try:
                    if stream:
                        with http.stream("POST", gateway.url + CHAT, json=body) as response:
                            text = response.read().decode()
                            if response.status_code != 200:
                                outcome = f"stream_status_{response.status_code}"
                            elif "data: [DONE]" in text:
                                outcome = "stream_ok"
                            elif '"error"' in text:
                                outcome = "stream_error_event"
                            else:
                                outcome = "stream_broken"
                    else:
                        response = http.post(gateway.url + CHAT, json=body)
                        outcome = "ok" if response.status_code == 200 else f"status_{response.status_code}"
                except httpx.HTTPError as exc:
                    outcome = f"transport_{type(exc).__name__}"
                with lock:
                    outcomes[outcome] += 1

    nonlocal_victim = {"process": victim}
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(client, i) for i in range(16)]
        time.sleep(2)
        victim.proc.kill()  # SIGKILL: connections reset mid-stream
        time.sleep(3)
        nonlocal_victim["process"] = start_mock(workdir, port=port, INTER_TOKEN_MS="20")
        time.sleep(3)
        stop.set()
        for future in futures:
            future.result()
    nonlocal_victim["process"].stop()
    victim.stop()
    failures = {k: v for k, v in outcomes.items() if k not in ("ok", "stream_ok", "stream_error_event")}
    assert not failures, outcomes
    assert outcomes["ok"] > 50 and outcomes["stream_ok"] > 50, outcomes
    assert breaker_events(gateway, "open") >= 1
    assert breaker_events(gateway, "close") >= 1  # the restarted upstream was probed back in
    assert deployment_state(gateway, "up1") == 0
    eventually(lambda: metric_value(gateway.url, "inflight_requests") == 0, 10, "no request in flight")
    # Connections to the clients are gone; pooled upstream connections may remain (bounded by the pool).
    eventually(
        lambda: (
            process.num_fds()
            - len(
                [c for c in process.net_connections("tcp") if c.raddr and c.raddr.port in (steady.port, port)]
            )
            <= fds_before
        ),
        10,
        "the fds of before",
    )
    assert "Traceback" not in gateway.output()


def test_a_fallback_never_carries_the_first_upstreams_credentials(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    keyed, keyless = mock_factory(), mock_factory()
    fault(keyed, "status=503")
    path = tmp_path / "routing.yaml"
    keyed_upstream = {"name": "keyed", "kind": "openai", "base_url": keyed.url, "api_key_env": "KEYED_KEY"}
    azure_upstream = {
        "name": "azure",
        "kind": "azure-openai",
        "base_url": keyless.url,
        "api_key_env": "AZ_KEY",
        "api_version": "2024-10-21",
    }
    group = [{"upstream": "keyed"}, {"upstream": "azure", "upstream_model": "d", "priority": 1}]
    path.write_text(
        yaml.safe_dump(
            {
                "upstreams": [keyed_upstream, azure_upstream],
                "routes": [{"model": "gpt-4o", "deployments": group}],
            }
        )
    )
    gateway = gateway_factory(ROUTING_FILE=str(path), KEYED_KEY="sk-keyed-0123456789", AZ_KEY="az-0123456789")
    response = httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o"))
    assert response.status_code == 200, response.text
    first = httpx.get(keyed.url + "/_mock/last-request").json()
    second = httpx.get(keyless.url + "/_mock/last-request").json()
    assert first["headers"]["authorization"] == "Bearer sk-keyed-0123456789"
    assert second["path"] == "/openai/deployments/d/chat/completions"
    assert second["headers"]["api-key"] == "az-0123456789"
    assert "authorization" not in second["headers"]
    assert "sk-keyed" not in json.dumps(second)


def test_streams_the_upstream_breaks_off_count_against_its_breaker(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    """A deployment whose streams always break after a few events is failing, though every attempt
    began with a healthy 200: each broken stream is one failure, not a success and a failure."""
    upstream = mock_factory()
    gateway = gateway_factory(ROUTING_FILE=str(routing(tmp_path, [{"url": upstream.url}])), **FAST_BREAKER)
    fault(upstream, "drop-after=3")
    for tenant in ("a", "b"):
        with httpx.stream(
            "POST",
            gateway.url + CHAT,
            json=chat_body(model="gpt-4o", stream=True),
            headers={"X-Api-Key": tenant},
        ) as response:
            assert response.status_code == 200
            assert '"error"' in response.read().decode()  # the API's error event ends it
    assert breaker_events(gateway, "open") == 1
    assert attempts(gateway, "up0", "stream_error") == 2 and attempts(gateway, "up0", "ok") == 0
    assert_openai_error(ask(gateway), 503, "upstream_circuit_open")


def test_an_answer_that_stalls_after_its_headers_is_retried_elsewhere(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    """Nothing of a non-stream answer reaches the client before all of it came: one the upstream
    stops sending half-way goes to another deployment."""
    stalling, healthy = mock_factory(), mock_factory()
    script = {"status": 200, "content_type": "application/json", "headers": {"Content-Length": "400"}}
    httpx.put(
        stalling.url + "/_mock/scripts/half", json={**script, "writes": ['{"id": "chatcmpl-half", ']}
    ).raise_for_status()
    fault(stalling, "script=half")
    gateway = gateway_factory(
        ROUTING_FILE=str(routing(tmp_path, [{"url": stalling.url}, {"url": healthy.url, "priority": 1}])),
        STREAM_IDLE_TIMEOUT_SECS="1",
    )
    response = ask(gateway)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"
    assert (received(stalling), received(healthy)) == (1, 1)
    assert attempts(gateway, "up0", "timeout") == 1
    # The second the upstream stalled is its time, not the gateway's overhead.
    assert float(response.headers["x-gateway-overhead-ms"]) < 500


def test_a_deployment_that_refuses_the_key_is_failed_over_and_then_skipped(
    gateway_factory: GatewayFactory, mock_factory: MockFactory, tmp_path: Path
) -> None:
    refusing, healthy = mock_factory(), mock_factory()
    fault(refusing, "status=401")
    gateway = gateway_factory(
        ROUTING_FILE=str(routing(tmp_path, [{"url": refusing.url}, {"url": healthy.url, "priority": 1}])),
        **FAST_BREAKER,
    )
    for n in range(6):
        assert ask(gateway, f"tenant-{n % 2}").status_code == 200
    assert received(refusing) == 2  # never retried in place; skipped once its breaker opened
    assert deployment_state(gateway, "up0") == 2 and attempts(gateway, "up0", "client_error") == 2
