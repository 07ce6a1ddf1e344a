"""The OpenAI endpoints beside chat, called with the official Python SDK against real processes:
``responses.create`` and ``completions.create`` (streamed and not) and ``embeddings.create`` get the
same quotas, redaction, usage metering, spans and stream handling as chat, through the one
pipeline."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from openaimock.completions import DEFAULT_REPLY
from openaimock.legacy import EMBEDDING_DIMENSIONS
from tests.conftest import GatewayFactory
from tests.integration.scrape import scrape, value
from tests.otlp_receiver import OTLPReceiver
from tests.support import ManagedProcess, mock_stat_reaches

SERVER = 2  # SpanKind SERVER in the OTLP protobuf
EMAIL = "jane.doe@example.com"
MASKED_EMAIL = "j***e@example.com"  # REDACT_MODE=mask, the default


def client(gateway: ManagedProcess, key: str = "apis-tenant") -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def reply(text: str) -> str:
    """The mock directive that makes the upstream answer exactly ``text``."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def last_upstream_body(mock: ManagedProcess) -> str:
    return str(httpx.get(mock.url + "/_mock/last-request").json()["body"])


@pytest.fixture
def gateway(gateway_factory: GatewayFactory, mock: ManagedProcess) -> Iterator[ManagedProcess]:
    yield gateway_factory()


def test_a_completion_comes_back_with_its_text_and_usage(gateway: ManagedProcess) -> None:
    with client(gateway) as sdk:
        answer = sdk.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say this is a test")
    assert answer.object == "text_completion"
    assert answer.choices[0].text == DEFAULT_REPLY
    assert answer.usage is not None and answer.usage.prompt_tokens == 5
    samples = scrape(gateway.url)
    assert value(samples, "requests_total", route="/v1/completions") == 1
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == 5
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == 20


def test_a_response_comes_back_with_its_text_and_usage_streamed_or_not(gateway: ManagedProcess) -> None:
    with client(gateway) as sdk:
        answer = sdk.responses.create(model="gpt-4o-mini", input="one two three")
        events = list(sdk.responses.create(model="mock:inter-token-ms=0", input="one two", stream=True))
        with sdk.responses.stream(model="mock:inter-token-ms=0", input="one") as helper:
            final = helper.get_final_response()
    assert answer.output_text == DEFAULT_REPLY
    assert answer.usage is not None and (answer.usage.input_tokens, answer.usage.output_tokens) == (3, 20)
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == DEFAULT_REPLY
    assert events[-1].type == "response.completed"
    assert final.output_text == DEFAULT_REPLY
    samples = scrape(gateway.url)
    assert value(samples, "requests_total", route="/v1/responses") == 3
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == 6
    assert value(samples, "gen_ai_client_token_usage_count", gen_ai_token_type="output") == 3


def test_a_streamed_completion_is_metered_and_its_usage_chunk_hidden_unless_asked(
    gateway: ManagedProcess,
) -> None:
    with client(gateway) as sdk:
        chunks = list(sdk.completions.create(model="mock:inter-token-ms=0", prompt="one two", stream=True))
        asked = list(
            sdk.completions.create(
                model="mock:inter-token-ms=0",
                prompt="one two",
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == DEFAULT_REPLY
    assert all(chunk.choices for chunk in chunks)  # the chunk the gateway asked for stayed with it
    assert asked[-1].choices == [] and asked[-1].usage is not None
    assert asked[-1].usage.prompt_tokens == 2
    samples = scrape(gateway.url)
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == 4
    assert value(samples, "gen_ai_client_token_usage_count", gen_ai_token_type="input") == 2


def test_embeddings_come_back_as_the_sdk_decodes_them_and_count_input_tokens_only(
    gateway: ManagedProcess,
) -> None:
    with client(gateway) as sdk:
        default = sdk.embeddings.create(model="text-embedding-3-small", input=["one two", "three"])
        floats = sdk.embeddings.create(
            model="text-embedding-3-small", input="one two", encoding_format="float"
        )
    # The SDK asks for base64 and decodes it; both ways give the same vectors.
    assert [len(item.embedding) for item in default.data] == [EMBEDDING_DIMENSIONS] * 2
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
    assert default.usage.prompt_tokens == 3
    samples = scrape(gateway.url)
    assert value(samples, "requests_total", route="/v1/embeddings") == 2
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == 5
    assert value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda sdk, text: sdk.responses.create(
            model="mock:echo",
            instructions=f"answer {text}",
            input=[{"role": "user", "content": [{"type": "input_text", "text": f"from {text}"}]}],
        ),
        lambda sdk, text: sdk.completions.create(model="mock:echo", prompt=[f"first {text}", "second"]),
        lambda sdk, text: sdk.embeddings.create(model="text-embedding-3-small", input=["x", f"write {text}"]),
    ],
    ids=["responses", "completions", "embeddings"],
)
def test_the_input_is_redacted_before_the_upstream_sees_it(
    gateway: ManagedProcess, mock: ManagedProcess, call: Any
) -> None:
    with client(gateway) as sdk:
        call(sdk, EMAIL)
    sent = last_upstream_body(mock)
    assert EMAIL not in sent
    assert MASKED_EMAIL in sent


def test_a_completion_is_redacted_in_whole_answers_and_across_split_chunks(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    text = f"reach me at {EMAIL} or +14155552671 today"
    model = f"mock:reply={reply(text)},chunk-chars=3,inter-token-ms=0"
    with client(gateway) as sdk:
        whole = sdk.completions.create(model=model, prompt="hi").choices[0].text
        streamed = "".join(
            chunk.choices[0].text
            for chunk in sdk.completions.create(model=model, prompt="hi", stream=True)
            if chunk.choices
        )
    assert whole == streamed == f"reach me at {MASKED_EMAIL} or PHONE_MASKED_LAST4_2671 today"


def test_a_response_is_redacted_in_whole_answers_and_across_split_deltas(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    text = f"reach me at {EMAIL} or +14155552671 today"
    model = f"mock:reply={reply(text)},chunk-chars=3,inter-token-ms=0"
    with client(gateway) as sdk:
        whole = sdk.responses.create(model=model, input="hi").output_text
        events = list(sdk.responses.create(model=model, input="hi", stream=True))
        with sdk.responses.stream(model=model, input="hi") as helper:
            final = helper.get_final_response().output_text
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    [done] = [e.text for e in events if e.type == "response.output_text.done"]
    expected = f"reach me at {MASKED_EMAIL} or PHONE_MASKED_LAST4_2671 today"
    assert whole == streamed == done == final == expected


def test_one_quota_covers_every_api(gateway_factory: GatewayFactory, mock: ManagedProcess) -> None:
    gateway = gateway_factory(TENANT_QUOTAS="three=3", RPS="1000", BURST="1000")
    with client(gateway, "three") as sdk:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        sdk.embeddings.create(model="text-embedding-3-small", input="hi")
        sdk.responses.create(model="gpt-4o-mini", input="hi")
        started = time.monotonic()
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")
    assert time.monotonic() - started < 3
    assert caught.value.code == "quota_exceeded"
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"


@pytest.mark.parametrize(
    "call",
    [
        lambda sdk, model: sdk.responses.create(model=model, input="hi", stream=True),
        lambda sdk, model: sdk.completions.create(model=model, prompt="hi", stream=True),
    ],
    ids=["responses", "completions"],
)
def test_an_upstream_failure_mid_stream_reaches_the_sdk_as_an_error(
    gateway: ManagedProcess, call: Any
) -> None:
    with client(gateway) as sdk:
        stream = call(sdk, "mock:drop-after=4,inter-token-ms=0")
        with pytest.raises(openai.APIError) as caught:
            for _ in stream:
                pass
    assert "upstream" in str(caught.value.message)


@pytest.mark.parametrize(
    "call",
    [
        lambda sdk, model: sdk.responses.create(model=model, input="hi", stream=True),
        lambda sdk, model: sdk.completions.create(model=model, prompt="hi", stream=True),
    ],
    ids=["responses", "completions"],
)
def test_a_client_leaving_mid_stream_cancels_the_upstream_stream(
    gateway: ManagedProcess, mock: ManagedProcess, call: Any
) -> None:
    with client(gateway) as sdk:
        stream = call(sdk, "mock:inter-token-ms=200")
        next(iter(stream))
        stream.close()
    assert mock_stat_reaches(mock, "streams_cancelled", 1) == 1


@pytest.mark.parametrize(
    ("path", "body", "operation"),
    [
        ("/v1/responses", {"model": "mock:echo", "input": "one two three"}, "chat"),
        ("/v1/completions", {"model": "mock:echo", "prompt": "one two three"}, "text_completion"),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "one two three"}, "embeddings"),
    ],
)
def test_spans_carry_the_apis_genai_operation_and_usage(
    gateway_factory: GatewayFactory,
    mock: ManagedProcess,
    otlp_receiver: OTLPReceiver,
    path: str,
    body: dict[str, Any],
    operation: str,
) -> None:
    gateway = gateway_factory(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url)
    assert httpx.post(gateway.url + path, json=body).status_code == 200
    spans = otlp_receiver.wait_for(2)
    [server] = [span for span in spans if span.kind == SERVER]
    assert server.name == f"POST {path}"
    assert server.attributes["gen_ai.operation.name"] == operation
    assert server.attributes["gen_ai.system"] == "openai"
    assert server.attributes["gen_ai.usage.input_tokens"] == 3
    [upstream] = [span for span in spans if span.kind != SERVER]
    assert upstream.name == f"{operation} {body['model']}"


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/v1/completions", {"model": "m"}, "invalid_prompt"),
        ("/v1/completions", {"model": "m", "prompt": []}, "invalid_prompt"),
        ("/v1/embeddings", {"model": "m", "input": ""}, "invalid_input"),
        ("/v1/embeddings", {"input": "x"}, "invalid_model"),
        ("/v1/responses", {"model": "m", "input": 3}, "invalid_input"),
        ("/v1/responses", {"model": "m", "input": "x", "stream": "yes"}, "invalid_stream"),
    ],
)
def test_bad_input_gets_a_400_in_the_openai_shape(
    gateway: ManagedProcess, path: str, body: dict[str, Any], code: str
) -> None:
    response = httpx.post(gateway.url + path, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_legacy_logprobs_are_refused_while_redacting_and_served_without(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    redacting = gateway_factory(TENANT_QUOTAS="one=1", RPS="1000", BURST="1000")
    plain = gateway_factory(REDACTION="off")
    with client(redacting, "one") as sdk:
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi", logprobs=2)
        assert caught.value.code == "unsupported_with_redaction"
        assert httpx.get(mock.url + "/_mock/stats").json()["requests"] == 0  # never left the gateway
        # The refusal spent no quota: the tenant's one request still goes through (logprobs=0 asks
        # for nothing).
        assert sdk.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi", logprobs=0).choices
    with client(plain) as sdk:
        assert sdk.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi", logprobs=2).choices


def test_a_responses_stream_that_ends_with_response_completed_ends_for_the_client(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    """The SDK stops reading at ``response.completed``; so does the relay, however long the upstream
    keeps its connection open after it."""
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    data = {
        "type": "response.completed",
        "response": {"id": "r", "object": "response", "output": [], "usage": usage},
    }
    completed = "event: response.completed\ndata: " + orjson.dumps(data).decode() + "\n\n"
    spec = {"status": 200, "content_type": "text/event-stream", "headers": {},
            "writes": [completed, ": still here\n\n"], "write_delay_ms": 20000}  # fmt: skip
    httpx.put(f"{mock.url}/_mock/scripts/lingering", json=spec).raise_for_status()
    started = time.monotonic()
    with client(gateway) as sdk:
        events = list(sdk.responses.create(model="mock:script=lingering", input="hi", stream=True))
    assert time.monotonic() - started < 10
    assert [e.type for e in events] == ["response.completed"]
    assert value(scrape(gateway.url), "gen_ai_client_token_usage_sum", gen_ai_token_type="output") == 2


@pytest.mark.parametrize(
    "options", [{"top_logprobs": 2}, {"include": ["message.output_text.logprobs"]}], ids=["top", "include"]
)
def test_responses_log_probabilities_are_refused_while_redacting(
    gateway: ManagedProcess, mock: ManagedProcess, options: dict[str, Any]
) -> None:
    with client(gateway) as sdk, pytest.raises(openai.BadRequestError) as caught:
        sdk.responses.create(model="gpt-4o-mini", input="hi", **options)
    assert caught.value.code == "unsupported_with_redaction"
    assert httpx.get(mock.url + "/_mock/stats").json()["requests"] == 0
