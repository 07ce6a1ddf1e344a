"""The client contract, tried with the official OpenAI SDKs (Python and Node) at their default
settings: refusals that cannot succeed soon fail at once, retryable ones succeed, failed calls
cost no quota, and headers and request ids tell the truth."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import orjson
import pytest

from llm_gateway.core.quota import quota_key
from tests.conftest import UPSTREAM_KEY, GatewayFactory
from tests.integration.chat import CHAT, assert_openai_error, chat_body, metric_value
from tests.support import ManagedProcess, RedisServer, free_port, node_chat

LOOSE_RATE = {"RPS": "100000", "BURST": "100000"}
LIMIT_HEADERS = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests")


def sdk(gateway: ManagedProcess, key: str, **options: Any) -> openai.OpenAI:
    """The Python SDK as users create it: default retries (2) and timeout unless a test says otherwise."""
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, **options)


def ask(client: openai.OpenAI, model: str = "gpt-4o-mini") -> Any:
    """One call; the client is closed after it (its connections with it)."""
    with client:
        return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def script(
    mock: ManagedProcess, name: str, status: int, body: dict[str, Any], headers: dict[str, str]
) -> str:
    spec = {"status": status, "content_type": "application/json", "headers": headers,
            "writes": [orjson.dumps(body).decode()]}  # fmt: skip
    httpx.put(f"{mock.url}/_mock/scripts/{name}", content=orjson.dumps(spec)).raise_for_status()
    return f"mock:script={name}"


def quota_blocks(gateway: ManagedProcess) -> float:
    return metric_value(gateway.url, 'quota_block_total{reason="exceeded"}')


def test_a_tenant_with_a_quota_of_zero_fails_at_once_in_both_sdks(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(TENANT_QUOTAS="zero=0", **LOOSE_RATE)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as caught:
        ask(sdk(gateway, "zero"))
    assert time.monotonic() - started < 3  # was 120 s: the SDK slept on Retry-After, twice
    headers = caught.value.response.headers
    assert headers["x-should-retry"] == "false"
    assert int(headers["retry-after"]) > 10  # still the truth: the window's end
    node = node_chat(gateway.url + "/v1", "zero", "gpt-4o-mini")
    assert (node["ok"], node["status"], node["code"]) == (False, 429, "quota_exceeded")
    assert node["seconds"] < 3
    assert quota_blocks(gateway) == 2  # one attempt each: neither SDK retried


def test_a_spent_hourly_quota_fails_at_once_in_both_sdks(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(DEFAULT_QUOTA="1", QUOTA_WINDOW_SECS="3600", **LOOSE_RATE)
    ask(sdk(gateway, "hourly"))
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as caught:
        ask(sdk(gateway, "hourly"))
    assert time.monotonic() - started < 3
    assert 3500 < int(caught.value.response.headers["retry-after"]) <= 3600
    node = node_chat(gateway.url + "/v1", "hourly", "gpt-4o-mini")
    assert (node["ok"], node["status"]) == (False, 429) and node["seconds"] < 3  # was about an hour


def test_a_quota_window_that_ends_within_seconds_is_retried_by_the_sdk_and_succeeds(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory(DEFAULT_QUOTA="1", QUOTA_WINDOW_SECS="2", **LOOSE_RATE)
    ask(sdk(gateway, "soon"))
    refused = httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "soon"})
    assert refused.status_code == 429 and refused.headers["x-should-retry"] == "true"
    started = time.monotonic()
    assert ask(sdk(gateway, "soon")).choices[0].message.content  # the SDK waited for the next window
    assert time.monotonic() - started < 5


def test_rate_limit_refusals_are_retried_after_an_accurate_short_wait(
    gateway_factory: GatewayFactory,
) -> None:
    gateway = gateway_factory(RPS="2", BURST="1", DEFAULT_QUOTA="1000")
    started = time.monotonic()
    for _ in range(3):  # each call after the first is refused once, waits ~0.5 s, then succeeds
        ask(sdk(gateway, "paced"))
    assert time.monotonic() - started < 4
    refused = [
        httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "paced2"}) for _ in range(2)
    ][1]
    assert_openai_error(refused, 429, "rate_limit_exceeded")
    # The refusal describes the rate limit that refused it: its burst, nothing left, the wait.
    assert refused.headers["x-ratelimit-limit-requests"] == "1"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-should-retry"] == "true"
    assert 0 < int(refused.headers["retry-after-ms"]) <= 500
    node = node_chat(gateway.url + "/v1", "paced2", "gpt-4o-mini")
    assert node["ok"] is True and node["seconds"] < 3


@pytest.mark.parametrize(
    ("setup", "reason", "error"),
    [
        ({"TIMEOUT_SECS": "1"}, "upstream_timeout", openai.InternalServerError),
        ({}, "upstream_error", openai.InternalServerError),
        ({"upstream": "dead"}, "upstream_unavailable", openai.InternalServerError),
    ],
    ids=["first-byte-timeout", "upstream-5xx", "connect-failure"],
)
def test_failed_calls_cost_no_quota_however_often_the_sdk_retries(
    gateway_factory: GatewayFactory,
    redis_server: RedisServer,
    setup: dict[str, str],
    reason: str,
    error: type[Exception],
) -> None:
    env = dict(setup)
    upstream = f"http://127.0.0.1:{free_port()}/v1" if env.pop("upstream", None) else None
    gateway = gateway_factory(upstream, REDIS_URL=redis_server.url, DEFAULT_QUOTA="5", **LOOSE_RATE, **env)
    model = {"upstream_timeout": "mock:latency-ms=2500", "upstream_error": "mock:status=500"}.get(reason, "m")
    with pytest.raises(error) as caught:
        ask(sdk(gateway, "unlucky"), model)  # three attempts: the SDK retries 5xx twice
    assert redis_server.client().get(quota_key("unlucky")) in (None, b"0")
    assert metric_value(gateway.url, f'quota_refunds_total{{reason="{reason}"}}') == 3
    # The error's headers report the room the refunds left: all of it.
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "5"  # type: ignore[attr-defined]


def test_an_upstream_5xx_keeps_its_message_without_the_gateways_key(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    response = httpx.post(
        gateway.url + CHAT, json=chat_body(model="mock:status=500,echo-auth"), headers={"X-Api-Key": "diag"}
    )
    error = assert_openai_error(response, 502, "upstream_error")
    assert error["message"].startswith("upstream returned HTTP 500: mock failure 500 as requested")
    assert "[REDACTED]" in error["message"] and "sk-upstream" not in response.text
    assert all(name in response.headers for name in LIMIT_HEADERS)  # the gateway's own error: its limits
    # An upstream 503 says the upstream has no room: the tenant's room is not offered as if it helped.
    busy = httpx.post(
        gateway.url + CHAT, json=chat_body(model="mock:status=503"), headers={"X-Api-Key": "diag"}
    )
    assert_openai_error(busy, 502, "upstream_error")
    assert not any(name in busy.headers for name in LIMIT_HEADERS)


def test_an_upstream_429_passes_its_wait_and_claims_no_room(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    body = {
        "error": {
            "message": "Rate limit reached for gpt-4o",
            "type": "requests",
            "code": "rate_limit_exceeded",
        }
    }
    headers = {"retry-after": "2", "x-ratelimit-remaining-requests": "9999", "x-request-id": "req_up_429"}
    model = script(mock, "upstream-429", 429, body, headers)
    response = httpx.post(gateway.url + CHAT, json=chat_body(model=model), headers={"X-Api-Key": "busy"})
    assert response.status_code == 429
    assert response.json() == body  # the upstream's own error, as it sent it
    assert response.headers["retry-after"] == "2"
    assert not any(name.startswith("x-ratelimit-") for name in response.headers)  # neither ours nor its
    assert response.headers["x-upstream-request-id"] == "req_up_429"
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError):
        ask(sdk(gateway, "busy", max_retries=1), model)
    assert time.monotonic() - started >= 2  # the SDK waited as the upstream asked (was 1.2 s in all)
    assert metric_value(gateway.url, 'quota_refunds_total{reason="upstream_rate_limited"}') == 3


def test_one_request_id_follows_the_request_from_caller_to_upstream_and_back(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    model = script(
        mock,
        "ids",
        200,
        {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m", "choices": []},
        {"x-request-id": "req_provider_77", "openai-processing-ms": "42", "openai-organization": "acme"},
    )
    response = httpx.post(
        gateway.url + CHAT,
        json=chat_body(model=model),
        headers={"X-Api-Key": "ids", "X-Request-Id": "caller-1"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "caller-1"
    assert response.headers["x-upstream-request-id"] == "req_provider_77"
    assert response.headers["openai-processing-ms"] == "42"
    assert "openai-organization" not in response.headers
    assert httpx.get(mock.url + "/_mock/last-request").json()["headers"]["x-request-id"] == "caller-1"
    deadline = time.monotonic() + 5
    while '"upstream_request_id":"req_provider_77"' not in gateway.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(line for line in gateway.output().splitlines() if "req_provider_77" in line)
    assert orjson.loads(line)["request_id"] == "caller-1"
    # A caller id that is not a safe one is replaced, and never echoed.
    unsafe = httpx.post(
        gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "ids", "X-Request-Id": "x" * 200}
    )
    assert len(unsafe.headers["x-request-id"]) == 16
    assert (
        httpx.get(mock.url + "/_mock/last-request").json()["headers"]["x-request-id"]
        == unsafe.headers["x-request-id"]
    )


def test_the_upstream_key_reaches_no_client_however_an_upstream_echoes_it(
    gateway: ManagedProcess, mock: ManagedProcess, gateway_factory: GatewayFactory
) -> None:
    """The hostile run's findings: 3xx and 200 bodies, escaped and cut error messages, headers and
    stream events all carried the key an upstream echoed."""
    escaped = UPSTREAM_KEY.replace("-", "\\u002d")
    cases = {
        "302": "mock:status=302,echo-auth",
        "200": "mock:status=200,echo-auth",
        "escaped": script(mock, "escaped", 500, {"error": {"message": f"bad key {escaped}"}}, {}),
        "cut": script(mock, "cut", 500, {"error": {"message": "x" * 990 + " " + UPSTREAM_KEY}}, {}),
        "headers": script(
            mock,
            "headers",
            429,
            {"error": {"message": "slow"}},
            {"x-request-id": UPSTREAM_KEY, "retry-after": UPSTREAM_KEY, "openai-version": UPSTREAM_KEY},
        ),
    }
    for name, model in cases.items():
        response = httpx.post(gateway.url + CHAT, json=chat_body(model=model), headers={"X-Api-Key": "leak"})
        shown = response.text + str(response.headers) + response.json().get("error", {}).get("message", "")
        assert UPSTREAM_KEY[:8] not in shown, name
    # Redaction masks an `sk-` key as a secret anyway: without it, the scrub alone must hold.
    plain = gateway_factory(REDACTION="off")
    spec = {
        "writes": [
            f'data: {{"choices":[{{"index":0,"delta":{{"content":"{UPSTREAM_KEY}"}}}}]}}\n\n',
            "data: [DONE]\n\n",
        ]
    }
    httpx.put(f"{mock.url}/_mock/scripts/stream-echo", content=orjson.dumps(spec)).raise_for_status()
    streamed = httpx.post(
        plain.url + CHAT,
        json=chat_body(model="mock:script=stream-echo", stream=True),
        headers={"X-Api-Key": "leak"},
    )
    assert UPSTREAM_KEY not in streamed.text and "[REDACTED]" in streamed.text
