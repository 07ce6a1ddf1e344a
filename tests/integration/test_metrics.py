"""``GET /metrics`` against real processes: the replaced gateway's series, the LLM series, stream
usage, the overhead header, bounded cardinality, and validation by promtool."""

from __future__ import annotations

import asyncio
import subprocess
import time

import httpx
import orjson

from llm_gateway.core.privacy import tenant_hash
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, chat_body, sse_data
from tests.integration.scrape import label_values, scrape, value
from tests.support import ManagedProcess

KEY = {"X-Api-Key": "metrics-tenant"}


def test_the_replaced_gateways_series_keep_their_names_and_labels(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(TENANT_QUOTAS="capped=1")
    capped = {"X-Api-Key": "capped"}
    assert (
        httpx.post(gateway.url + CHAT, json=chat_body("mail a@example.com"), headers=capped).status_code
        == 200
    )
    assert httpx.post(gateway.url + CHAT, json=chat_body(), headers=capped).status_code == 429
    assert httpx.get(gateway.url + "/v1/models").status_code == 200
    samples = scrape(gateway.url)
    names = {s.name: set(s.labels) for s in samples}
    assert names["requests_total"] == {"route"}
    assert names["http_requests_total"] == {"route", "model"}
    assert names["inflight_requests"] == set()
    assert names["quota_block_total"] == {"reason"}
    assert names["cb_events_total"] == {"event"}
    assert "redactions_total" in names
    assert value(samples, "requests_total", route=CHAT) == 2
    assert value(samples, "requests_total", route="/v1/models") == 1
    assert value(samples, "http_requests_total", route=CHAT, model="gpt-4o-mini") == 2
    assert value(samples, "quota_block_total", reason="exceeded") == 1
    assert value(samples, "redactions_total", entity="EMAIL", direction="request") == 1
    assert value(samples, "inflight_requests") == 0
    assert not [s for s in samples if s.name.endswith("_created")]


def test_http_latency_histogram_by_route_and_exact_status(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(TENANT_QUOTAS="capped=0")
    httpx.post(gateway.url + CHAT, json=chat_body(), headers=KEY)
    httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "capped"})
    httpx.get(gateway.url + "/readyz")
    httpx.get(gateway.url + "/no/such/path")
    samples = scrape(gateway.url)
    name = "http_request_duration_seconds_count"
    assert value(samples, name, handler=CHAT, method="POST", status="200") == 1
    assert value(samples, name, handler=CHAT, method="POST", status="429") == 1
    assert value(samples, name, handler="/readyz", method="GET", status="200") == 1
    assert value(samples, name, handler="none", status="404") == 1  # raw paths never become labels


def test_inflight_counts_a_live_stream_and_falls_back_when_the_client_leaves(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory()
    body = chat_body("a b c d e f g h", model="mock:echo,inter-token-ms=300", stream=True)
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        with client.stream("POST", CHAT, json=body) as response:
            chunks = response.iter_raw()  # kept: a dropped iterator closes the response
            next(chunks)
            assert value(scrape(gateway.url), "inflight_requests") == 1
        # Leaving mid-stream closes the connection; the gateway notices and cleans up.
        samples = _settled(gateway.url)
    assert value(samples, "inflight_requests") == 0
    assert value(samples, "gateway_streams_total", outcome="client_cancelled") == 1


def test_stream_outcomes_are_counted_however_streams_end(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(STREAM_IDLE_TIMEOUT_SECS="0.5")
    for model in ("mock:echo", "mock:echo,drop-after=2", "mock:echo,inter-token-ms=1500"):
        response = httpx.post(
            gateway.url + CHAT, json=chat_body("a b c", model=model, stream=True), timeout=10
        )
        assert response.status_code == 200
    samples = scrape(gateway.url)
    for outcome in ("completed", "upstream_error", "idle_timeout"):
        assert value(samples, "gateway_streams_total", outcome=outcome) == 1, outcome
    assert value(samples, "inflight_requests") == 0


def test_streams_are_metered_with_usage_the_client_never_asked_for(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory()
    response = httpx.post(gateway.url + CHAT, json=chat_body("one two three", model="mock:echo", stream=True))
    payloads = sse_data(response.content)
    assert payloads[-1] == "[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    assert all(chunk["choices"] for chunk in chunks)  # the usage chunk was stripped
    upstream = httpx.get(mock.url + "/_mock/last-request").json()
    assert orjson.loads(upstream["body"])["stream_options"] == {"include_usage": True}
    samples = scrape(gateway.url)
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == 3
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == 3
    assert (
        value(samples, "gen_ai_server_time_to_first_token_seconds_count", gen_ai_request_model="mock:echo")
        == 1
    )


def test_a_client_that_asked_for_usage_still_gets_it(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory()
    body = chat_body("one two", model="mock:echo", stream=True, stream_options={"include_usage": True})
    payloads = sse_data(httpx.post(gateway.url + CHAT, json=body).content)
    usage_chunk = orjson.loads(payloads[-2])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 2
    assert value(scrape(gateway.url), "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == 2


def test_stream_usage_off_leaves_the_request_alone(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(STREAM_USAGE="off")
    httpx.post(gateway.url + CHAT, json=chat_body("one two", stream=True))
    upstream = httpx.get(mock.url + "/_mock/last-request").json()
    assert "stream_options" not in orjson.loads(upstream["body"])
    assert value(scrape(gateway.url), "gen_ai_client_token_usage_count") == 0


def test_non_stream_usage_and_per_tenant_series_use_the_key_hash(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory()
    assert (
        httpx.post(gateway.url + CHAT, json=chat_body("one two", model="mock:echo"), headers=KEY).status_code
        == 200
    )
    samples = scrape(gateway.url)
    tenant = tenant_hash(KEY["X-Api-Key"])
    assert value(samples, "gateway_tenant_requests_total", tenant=tenant, code="200") == 1
    assert value(samples, "gateway_tenant_tokens_total", tenant=tenant, gen_ai_token_type="input") == 2
    assert value(samples, "gateway_tenant_tokens_total", tenant=tenant, gen_ai_token_type="output") == 2
    assert KEY["X-Api-Key"] not in httpx.get(gateway.url + "/metrics").text


def test_a_tenant_hash_key_keys_the_pseudonyms_and_stays_secret(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(TENANT_HASH_KEY="hash-key-9f2c")
    httpx.post(gateway.url + CHAT, json=chat_body(), headers=KEY)
    assert label_values(scrape(gateway.url), "gateway_tenant_requests_total", "tenant") == {
        tenant_hash(KEY["X-Api-Key"], b"hash-key-9f2c")
    }
    assert "hash-key-9f2c" not in gateway.output()


def test_tenant_names_and_switching_per_tenant_series_off(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    named = gateway_factory(TENANT_LABEL="name", TENANT_QUOTAS="team-a=50")
    for key in ("team-a", "sk-undeclared"):
        httpx.post(named.url + CHAT, json=chat_body(), headers={"X-Api-Key": key})
    assert label_values(scrape(named.url), "gateway_tenant_requests_total", "tenant") == {"team-a", "other"}
    off = gateway_factory(METRICS_PER_TENANT="off")
    httpx.post(off.url + CHAT, json=chat_body(), headers=KEY)
    assert not [s for s in scrape(off.url) if "tenant" in s.labels]


def test_overhead_is_reported_in_a_header_and_a_histogram(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(TENANT_QUOTAS="capped=0")
    slow = httpx.post(gateway.url + CHAT, json=chat_body(model="mock:latency-ms=300"))
    refused = httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "capped"})
    stream = httpx.post(gateway.url + CHAT, json=chat_body(stream=True))
    for response in (slow, refused, stream):
        overhead_ms = float(response.headers["x-gateway-overhead-ms"])
        assert 0 < overhead_ms < 300  # the upstream's 300 ms wait is not the gateway's
    assert value(scrape(gateway.url), "gateway_overhead_seconds_count", route=CHAT) == 3


DISTINCT = 3_000  # 600 times the caps below; more only makes the suite slower (about 250 requests/s here)


def test_thousands_of_keys_and_models_leave_the_series_count_bounded(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory(METRICS_MAX_MODELS="5", METRICS_MAX_TENANTS="5")

    async def drive() -> None:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            queue = iter(range(DISTINCT))

            async def worker() -> None:
                for i in queue:
                    body = chat_body(model=f"model-{i}")
                    response = await client.post(CHAT, json=body, headers={"X-Api-Key": f"key-{i}"})
                    assert response.status_code == 200

            await asyncio.gather(*(worker() for _ in range(32)))

    before = len(scrape(gateway.url))
    asyncio.run(drive())
    samples = scrape(gateway.url)
    assert value(samples, "requests_total", route=CHAT) == DISTINCT
    models = label_values(samples, "http_requests_total", "model")
    assert len(models) == 6 and "other" in models
    assert len(label_values(samples, "gateway_tenant_requests_total", "tenant")) == 6
    # Every family's series: bounded by the caps (5), not by the thousands of distinct values.
    assert len(samples) - before < 400, len(samples) - before


def test_promtool_accepts_the_exposition(gateway_factory: GatewayFactory, mock: ManagedProcess) -> None:
    gateway = gateway_factory(TENANT_QUOTAS="capped=0")
    httpx.post(gateway.url + CHAT, json=chat_body(stream=True), headers=KEY)
    httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "capped"})
    httpx.get(gateway.url + "/v1/models")
    exposition = httpx.get(gateway.url + "/metrics").text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == result.stderr == ""  # no lint warnings either


def _settled(base_url: str) -> list:  # type: ignore[type-arg]
    """A scrape once in-flight requests have drained (the gateway learns of a disconnect asynchronously)."""
    deadline = time.monotonic() + 5
    while True:
        samples = scrape(base_url)
        if value(samples, "inflight_requests") == 0 or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)
