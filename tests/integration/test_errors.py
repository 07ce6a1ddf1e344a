"""Errors the gateway itself produces: right status, OpenAI shape, and the upstream never called."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.chat import CHAT, assert_openai_error, chat_body
from tests.support import ManagedProcess, start_gateway

JSON = {"Content-Type": "application/json"}


def upstream_requests(mock: ManagedProcess) -> int:
    return int(httpx.get(mock.url + "/_mock/stats").json()["requests"])


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "invalid_model"),
        (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "invalid_model"),
        (b'{"model": "m", "messages": []}', "invalid_messages"),
        (b'{"model": "m", "messages": "hi"}', "invalid_messages"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "invalid_stream",
        ),
    ],
)
def test_invalid_bodies_get_400_and_never_reach_the_upstream(
    gateway: ManagedProcess, mock: ManagedProcess, raw: bytes, code: str
) -> None:
    response = httpx.post(gateway.url + CHAT, content=raw, headers=JSON)
    assert_openai_error(response, 400, code)
    assert upstream_requests(mock) == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_non_json_content_type_gets_415(
    gateway: ManagedProcess, mock: ManagedProcess, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = httpx.post(gateway.url + CHAT, content=b'{"model": "m"}', headers=headers)
    assert_openai_error(response, 415, "unsupported_media_type")
    assert upstream_requests(mock) == 0


def test_json_content_type_with_charset_is_accepted(gateway: ManagedProcess, mock: ManagedProcess) -> None:
    response = httpx.post(
        gateway.url + CHAT,
        content=httpx.Request("POST", "/", json=chat_body()).content,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


@pytest.fixture(scope="module")
def small_gateway(workdir: Path, shared_mock: ManagedProcess) -> Iterator[ManagedProcess]:
    process = start_gateway(workdir, shared_mock.url, MAX_BODY_BYTES="1000")
    yield process
    process.stop()


def test_body_over_the_limit_gets_413(small_gateway: ManagedProcess, mock: ManagedProcess) -> None:
    response = httpx.post(small_gateway.url + CHAT, json=chat_body("x" * 2000))
    assert_openai_error(response, 413, "request_too_large")
    assert httpx.post(small_gateway.url + CHAT, json=chat_body("x" * 100)).status_code == 200
    assert upstream_requests(mock) == 1


def test_chunked_body_over_the_limit_gets_413(small_gateway: ManagedProcess, mock: ManagedProcess) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(50):
            yield b"x" * 100
        yield b'"}]}'

    response = httpx.post(small_gateway.url + CHAT, content=body(), headers=JSON)
    assert "content-length" not in response.request.headers
    assert_openai_error(response, 413, "request_too_large")
    assert upstream_requests(mock) == 0


def test_unknown_route_gets_404_in_openai_shape(gateway: ManagedProcess) -> None:
    assert_openai_error(httpx.get(gateway.url + "/v1/nope"), 404, "not_found")
    assert_openai_error(httpx.post(gateway.url + "/v1/images/generations", json={}), 404, "not_found")


def test_wrong_method_gets_405_in_openai_shape(gateway: ManagedProcess) -> None:
    response = httpx.get(gateway.url + CHAT)
    assert_openai_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    assert_openai_error(httpx.post(gateway.url + "/healthz"), 405, "method_not_allowed")
    assert_openai_error(httpx.delete(gateway.url + "/v1/models"), 405, "method_not_allowed")


def test_health_and_readiness(gateway: ManagedProcess) -> None:
    health = httpx.get(gateway.url + "/healthz")
    assert (health.status_code, health.text) == (200, "ok")
    ready = httpx.get(gateway.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"upstream": "ok", "redis": "not configured (embedded store)"},
    }
