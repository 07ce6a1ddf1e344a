"""The proxy's happy paths and its mapping of upstream failures, against the real mock."""

from __future__ import annotations

import time

import httpx
import orjson

from openaimock.completions import DEFAULT_REPLY
from tests.conftest import UPSTREAM_KEY
from tests.integration.chat import CHAT, assert_openai_error, chat_body, sse_data, streamed_text
from tests.support import ManagedProcess, free_port


def test_non_stream_returns_the_upstream_completion(gateway: ManagedProcess, mock: ManagedProcess) -> None:
    response = httpx.post(gateway.url + CHAT, json=chat_body("Hola 👋"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == DEFAULT_REPLY
    assert completion["usage"]["completion_tokens"] == 20


def test_stream_relays_every_event_in_order_ending_with_done(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    direct = sse_data(httpx.post(mock.url + CHAT, json=body).content)
    response = httpx.post(gateway.url + CHAT, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    relayed = sse_data(response.content)
    assert len(relayed) == len(direct) == 24  # role + 20 words + finish + usage + [DONE]
    assert relayed[-1] == "[DONE]"
    assert orjson.loads(relayed[0])["choices"][0]["delta"]["role"] == "assistant"
    assert streamed_text(relayed) == DEFAULT_REPLY
    assert orjson.loads(relayed[-2])["usage"]["completion_tokens"] == 20


def test_stream_events_arrive_as_the_upstream_sends_them(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    body = chat_body("one two three four five", model="mock:echo,inter-token-ms=150", stream=True)
    arrivals: list[float] = []
    started = time.monotonic()
    with httpx.stream("POST", gateway.url + CHAT, json=body) as response:
        for _ in response.iter_raw():
            arrivals.append(time.monotonic() - started)
    # 8 events 150 ms apart: the first must arrive long before the stream ends (no buffering).
    assert arrivals[0] < 0.5
    assert arrivals[-1] > 0.9
    assert len(arrivals) >= 6


def test_unknown_fields_and_multipart_content_reach_the_upstream_byte_for_byte(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    raw = (
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "text", '
        b'"text": "describe"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA="}}]}],'
        b' "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],'
        b' "tool_choice": "auto", "response_format": {"type": "json_object"}, "n": 2, "seed": 7,'
        b' "logprobs": true, "top_logprobs": 3, "user": "u-1", "stream_options": null,'
        b' "future_field": {"nested": [1, 2.5, "\\u00e9"]}}'
    )
    response = httpx.post(gateway.url + CHAT, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    received = httpx.get(mock.url + "/_mock/last-request").json()
    assert received["body"].encode() == raw
    assert orjson.loads(received["body"]) == orjson.loads(raw)


def test_upstream_gets_the_gateway_key_and_never_client_credentials(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    headers = {
        "Authorization": "Bearer sk-client-key",
        "X-Api-Key": "tenant-key",
        "Cookie": "session=abc",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "Connection": "keep-alive, X-Hop",
        "X-Hop": "1",
        "OpenAI-Organization": "org-other",
        "X-Forwarded-For": "203.0.113.9",
        "OpenAI-Beta": "assistants=v2",
    }
    response = httpx.post(gateway.url + CHAT, json=chat_body(), headers=headers)
    assert response.status_code == 200
    sent = httpx.get(mock.url + "/_mock/last-request").json()["headers"]
    assert sent["authorization"] == f"Bearer {UPSTREAM_KEY}"
    for name in (
        "x-api-key",
        "cookie",
        "proxy-authorization",
        "x-hop",
        "openai-organization",
        "x-forwarded-for",
    ):
        assert name not in sent, name
    assert sent["openai-beta"] == "assistants=v2"
    exposed = response.text + "".join(f"{k}: {v}" for k, v in response.headers.items())
    assert UPSTREAM_KEY not in exposed


def test_models_list_is_proxied(gateway: ManagedProcess, mock: ManagedProcess) -> None:
    response = httpx.get(gateway.url + "/v1/models", headers={"X-Api-Key": "demo"})
    assert response.status_code == 200
    assert {model["id"] for model in response.json()["data"]} >= {"gpt-4o-mini"}
    assert httpx.get(mock.url + "/_mock/last-request").json() == {}  # only chat requests are recorded


def test_upstream_client_errors_pass_through_with_their_body(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    for status in (400, 404, 429):
        response = httpx.post(gateway.url + CHAT, json=chat_body(model=f"mock:status={status}"))
        assert_openai_error(response, status, f"mock_{status}")


def test_an_upstream_error_that_quotes_the_gateway_key_reaches_the_client_without_it(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    direct = httpx.post(
        mock.url + CHAT,
        json=chat_body(model="mock:status=400,echo-auth"),
        headers={"Authorization": "Bearer sk-probe"},
    )
    assert "sk-probe" in direct.text  # the mock does quote the key
    response = httpx.post(gateway.url + CHAT, json=chat_body(model="mock:status=400,echo-auth"))
    assert response.status_code == 400
    assert UPSTREAM_KEY not in response.text
    assert "credentials received: Bearer [REDACTED]" in response.json()["error"]["message"]


def test_upstream_server_errors_become_502(gateway: ManagedProcess, mock: ManagedProcess) -> None:
    for status in (500, 503):
        for stream in (False, True):
            response = httpx.post(
                gateway.url + CHAT, json=chat_body(model=f"mock:status={status}", stream=stream)
            )
            error = assert_openai_error(response, 502, "upstream_error")
            assert str(status) in error["message"]


def test_upstream_refusing_the_gateway_key_is_a_502_not_the_clients_401(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    response = httpx.post(gateway.url + CHAT, json=chat_body(model="mock:status=401"))
    assert_openai_error(response, 502, "upstream_auth_failed")


def test_connection_refused_is_502(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    gateway = gateway_factory(upstream=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    response = httpx.post(gateway.url + CHAT, json=chat_body())
    assert_openai_error(response, 502, "upstream_unavailable")
    assert time.monotonic() - started < 2


def test_upstream_drop_mid_stream_ends_with_an_error_event(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    response = httpx.post(gateway.url + CHAT, json=chat_body(model="mock:drop-after=3", stream=True))
    assert response.status_code == 200
    payloads = sse_data(response.content)
    assert len(payloads) == 4  # three whole events, never the half one, then the error
    for payload in payloads[:3]:
        assert orjson.loads(payload)["object"] == "chat.completion.chunk"
    error = orjson.loads(payloads[-1])["error"]
    assert error["type"] == "upstream_error"
    assert set(error) == {"message", "type", "code"}
