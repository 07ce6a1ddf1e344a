"""Anthropic Messages through the gateway, called with the official ``anthropic`` SDK against real
processes: an Anthropic upstream (the mock) declared in the routing file, the tenant's key taken
from ``x-api-key``, the gateway's own key sent upstream; redaction (also across split deltas),
usage, quotas, errors in Anthropic's shape and SDK classes, and stream failures."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from openaimock.completions import DEFAULT_REPLY
from tests.conftest import GatewayFactory
from tests.integration.chat import anthropic_routing
from tests.integration.scrape import scrape, value
from tests.otlp_receiver import OTLPReceiver
from tests.support import ManagedProcess, mock_stat_reaches

ANTHROPIC_KEY = "sk-ant-gateway-0123456789abcdef"
EMAIL = "jane.doe@example.com"
MASKED_EMAIL = "j***e@example.com"
MODEL = "claude-gateway-test"  # a name the SDK has no deprecation notice for
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def start(gateway_factory: GatewayFactory, mock: ManagedProcess, tmp_path: Path) -> Any:
    def started(**env: str) -> ManagedProcess:
        return gateway_factory(
            ROUTING_FILE=anthropic_routing(tmp_path, mock.url), ANTHROPIC_API_KEY=ANTHROPIC_KEY, **env
        )

    return started


@pytest.fixture
def gateway(start: Any) -> Iterator[ManagedProcess]:
    yield start()


def client(gateway: ManagedProcess, key: str = "tenant-claude") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def reply(text: str) -> str:
    return "mock:reply=" + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def last(mock: ManagedProcess) -> dict[str, Any]:
    return dict(httpx.get(mock.url + "/_mock/last-request").json())


def test_a_message_reaches_the_anthropic_upstream_with_the_gateways_key(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    with client(gateway) as sdk:
        answer = sdk.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert answer.content[0].type == "text" and answer.content[0].text == DEFAULT_REPLY
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (1, 20)
    sent = last(mock)
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert sent["headers"]["anthropic-version"]  # the SDK's, passed on (see below)
    assert "authorization" not in sent["headers"]
    assert "tenant-claude" not in str(sent)
    samples = scrape(gateway.url)
    assert value(samples, "requests_total", route="/v1/messages") == 1
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == 20


def test_the_clients_api_version_and_betas_pass_and_a_default_version_fills_in(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    url = gateway.url + "/v1/messages"
    body = {"model": MODEL, "max_tokens": 8, "messages": HI}
    versioned = {"x-api-key": "t", "anthropic-version": "2099-01-01", "anthropic-beta": "tools-2099"}
    assert httpx.post(url, json=body, headers=versioned).status_code == 200
    assert (last(mock)["headers"]["anthropic-version"], last(mock)["headers"]["anthropic-beta"]) == (
        "2099-01-01",
        "tools-2099",
    )
    assert httpx.post(url, json=body, headers={"x-api-key": "t"}).status_code == 200
    assert last(mock)["headers"]["anthropic-version"] == "2023-06-01"


def test_a_stream_is_read_by_the_sdk_and_metered_from_message_start_and_message_delta(
    gateway: ManagedProcess,
) -> None:
    with client(gateway) as sdk, sdk.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == DEFAULT_REPLY
    assert final.usage.output_tokens == 20
    samples = scrape(gateway.url)
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == 1
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == 20


def test_a_bearer_token_names_the_tenant_too(gateway: ManagedProcess, mock: ManagedProcess) -> None:
    with anthropic.Anthropic(base_url=gateway.url, auth_token="tenant-bearer", max_retries=0) as sdk:
        sdk.messages.create(model=MODEL, max_tokens=8, messages=HI)
    assert last(mock)["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert "authorization" not in last(mock)["headers"]


def test_system_text_and_tool_results_are_redacted_before_the_upstream_sees_them(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    messages: Any = [
        {"role": "user", "content": [{"type": "text", "text": f"mail {EMAIL}"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "send", "input": {"to": EMAIL}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": f"sent to {EMAIL}"}],
        },
    ]
    with client(gateway) as sdk:
        sdk.messages.create(model=MODEL, max_tokens=8, system=f"the user is {EMAIL}", messages=messages)
    body = last(mock)["body"]
    assert EMAIL not in body
    assert body.count(MASKED_EMAIL) == 4


def test_answers_are_redacted_whole_and_across_split_deltas(gateway: ManagedProcess) -> None:
    model = reply(f"reach me at {EMAIL} or +14155552671 today") + ",chunk-chars=3"
    with client(gateway) as sdk:
        whole = sdk.messages.create(model=model, max_tokens=64, messages=HI).content[0]
        with sdk.messages.stream(model=model, max_tokens=64, messages=HI) as stream:
            streamed = "".join(stream.text_stream)
            final = stream.get_final_message().content[0]
    expected = f"reach me at {MASKED_EMAIL} or PHONE_MASKED_LAST4_2671 today"
    assert whole.type == "text" and whole.text == expected
    assert streamed == expected
    assert final.type == "text" and final.text == expected


def test_a_spent_quota_is_a_rate_limit_error_in_anthropics_shape(start: Any) -> None:
    gateway = start(TENANT_QUOTAS="one=1", RPS="1000", BURST="1000")
    with client(gateway, "one") as sdk:
        sdk.messages.create(model=MODEL, max_tokens=8, messages=HI)
        started = time.monotonic()
        with pytest.raises(anthropic.RateLimitError) as caught:
            sdk.messages.create(model=MODEL, max_tokens=8, messages=HI)
    assert time.monotonic() - started < 3
    response = caught.value.response
    assert response.json() == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": response.json()["error"]["message"]},
    }
    assert response.headers["anthropic-ratelimit-requests-limit"] == "1"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["x-should-retry"] == "false"


def test_bad_input_is_a_bad_request_error_in_anthropics_shape(gateway: ManagedProcess) -> None:
    with client(gateway) as sdk, pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(model=MODEL, max_tokens=8, messages=[])
    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "'messages' is required and must be a non-empty array",
        },
    }


def test_an_upstream_529_reaches_the_sdk_as_overloaded(gateway: ManagedProcess) -> None:
    with client(gateway) as sdk, pytest.raises(anthropic.APIStatusError) as caught:
        sdk.messages.create(model="mock:status=529", max_tokens=8, messages=HI)
    assert caught.value.status_code == 529


def test_an_upstream_failure_mid_stream_is_an_error_event_the_sdk_raises(gateway: ManagedProcess) -> None:
    with (
        client(gateway) as sdk,
        pytest.raises(anthropic.APIStatusError) as caught,
        sdk.messages.stream(model="mock:drop-after=5", max_tokens=64, messages=HI) as stream,
    ):
        for _ in stream.text_stream:
            pass
    assert "upstream" in str(caught.value.message)


def test_a_client_leaving_mid_stream_cancels_the_upstream_stream(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    with (
        client(gateway) as sdk,
        sdk.messages.stream(model="mock:inter-token-ms=200", max_tokens=64, messages=HI) as stream,
    ):
        next(iter(stream.text_stream))
    assert mock_stat_reaches(mock, "streams_cancelled", 1) == 1


def test_spans_say_anthropic(start: Any, otlp_receiver: OTLPReceiver) -> None:
    gateway = start(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url)
    with client(gateway) as sdk:
        sdk.messages.create(model=MODEL, max_tokens=8, messages=HI)
    [server] = [span for span in otlp_receiver.wait_for(2) if span.kind == 2]
    assert server.name == "POST /v1/messages"
    assert server.attributes["gen_ai.system"] == "anthropic"
    assert server.attributes["gen_ai.operation.name"] == "chat"
    assert server.attributes["gen_ai.usage.output_tokens"] == 20


def test_count_tokens_is_answered_redacted_and_admitted_like_a_message(
    start: Any, mock: ManagedProcess
) -> None:
    gateway = start(TENANT_QUOTAS="two=2", RPS="1000", BURST="1000")
    with client(gateway, "two") as sdk:
        counted = sdk.messages.count_tokens(
            model=MODEL, messages=[{"role": "user", "content": f"write to {EMAIL} now"}]
        )
        assert counted.input_tokens == 4
        assert EMAIL not in last(mock)["body"] and MASKED_EMAIL in last(mock)["body"]
        assert last(mock)["path"] == "/v1/messages/count_tokens"
        sdk.messages.create(model=MODEL, max_tokens=8, messages=HI)
        with pytest.raises(anthropic.RateLimitError):  # the count took one of the two
            sdk.messages.count_tokens(model=MODEL, messages=HI)
    samples = scrape(gateway.url)
    assert value(samples, "requests_total", route="/v1/messages/count_tokens") == 2
    assert (
        value(samples, "gen_ai_client_token_usage_count", gen_ai_token_type="input") == 1
    )  # the message only
