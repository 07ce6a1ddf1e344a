"""Abusive clients over real sockets: slow, oversized, too many, too deep; no way to redirect the upstream.

Each refusal must be a clear status, and the worker must go on serving afterwards.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, assert_openai_error, chat_body, metric_value
from tests.support import ManagedProcess

READ_TIMEOUT = "1"
HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"


Connect = Callable[[ManagedProcess], socket.socket]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Open raw client sockets to a gateway; all are closed after the test."""
    opened: list[socket.socket] = []

    def open_one(gateway: ManagedProcess) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
        opened.append(sock)
        return sock

    yield open_one
    for sock in opened:
        sock.close()


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_response(sock: socket.socket) -> bytes:
    """One complete response (headers and a ``content-length`` body) from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def status_and_error(raw: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    return int(head.split(b" ", 2)[1]), orjson.loads(body)["error"]


def still_serving(gateway: ManagedProcess) -> None:
    response = httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "after"})
    assert response.status_code == 200
    assert metric_value(gateway.url, "inflight_requests") == 0


def guarded(factory: GatewayFactory, **env: str) -> ManagedProcess:
    return factory(REQUEST_READ_TIMEOUT_SECS=READ_TIMEOUT, **env)


def test_slowloris_headers_get_408_when_the_read_deadline_passes(
    gateway_factory: GatewayFactory, mock: ManagedProcess, connect: Connect
) -> None:
    gateway = guarded(gateway_factory)
    sock = connect(gateway)
    started = time.monotonic()
    sock.sendall(HEAD)
    for _ in range(5):  # a byte every 0.3 s: each arrival would reset a naive idle timer
        time.sleep(0.3)
        try:
            sock.sendall(b"X")
        except OSError:
            break
    status, error = status_and_error(read_all(sock))
    assert (status, error["code"]) == (408, "request_timeout")
    assert time.monotonic() - started < 3
    still_serving(gateway)


def test_a_silent_connection_and_a_slow_body_are_cut_off(
    gateway_factory: GatewayFactory, mock: ManagedProcess, connect: Connect
) -> None:
    gateway = guarded(gateway_factory)
    silent = connect(gateway)
    slow_body = connect(gateway)
    slow_body.sendall(HEAD + b"Content-Length: 200\r\n\r\n" + b'{"model":')
    assert status_and_error(read_all(silent))[0] == 408
    assert status_and_error(read_all(slow_body))[0] == 408
    still_serving(gateway)


def test_oversized_headers_get_431(
    gateway_factory: GatewayFactory, mock: ManagedProcess, connect: Connect
) -> None:
    gateway = gateway_factory(MAX_HEADER_BYTES="8192")
    sock = connect(gateway)
    sock.sendall(HEAD + b"X-Filler: " + b"a" * 9000 + b"\r\n\r\n")
    status, error = status_and_error(read_all(sock))
    assert (status, error["code"]) == (431, "request_header_fields_too_large")
    ok = httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Filler": "a" * 7000})
    assert ok.status_code == 200


def test_idle_keepalive_connections_are_bounded(
    gateway_factory: GatewayFactory, mock: ManagedProcess, connect: Connect
) -> None:
    gateway = guarded(gateway_factory, MAX_CONNECTIONS="3", KEEPALIVE_TIMEOUT_SECS="30")
    request = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"
    idle = []
    for _ in range(3):
        sock = connect(gateway)
        sock.sendall(request)
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        idle.append(sock)
        time.sleep(0.05)
    newcomer = connect(gateway)  # the fourth: the longest-idle connection makes room
    newcomer.sendall(request)
    assert read_response(newcomer).startswith(b"HTTP/1.1 200")
    assert idle[0].recv(65536) == b""  # closed by the server
    idle[1].sendall(request)
    assert read_response(idle[1]).startswith(b"HTTP/1.1 200")


def test_when_every_connection_is_busy_a_new_one_gets_503(
    gateway_factory: GatewayFactory, mock: ManagedProcess, connect: Connect
) -> None:
    gateway = gateway_factory(MAX_CONNECTIONS="2", REQUEST_READ_TIMEOUT_SECS="5")
    busy = [connect(gateway) for _ in range(2)]
    for sock in busy:
        sock.sendall(HEAD)  # headers begun, never finished: busy, not idle
    time.sleep(0.2)
    status, error = status_and_error(read_all(connect(gateway)))
    assert (status, error["code"]) == (503, "server_overloaded")
    for sock in busy:
        sock.close()
    time.sleep(0.2)
    still_serving(gateway)


def test_deep_json_is_refused_before_parsing_and_the_limit_is_forwardable(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    deep = orjson.dumps(chat_body()).replace(b'"stream":false', b'"tools":' + b"[" * 65 + b"]" * 65)
    response = httpx.post(gateway.url + CHAT, content=deep, headers={"Content-Type": "application/json"})
    assert_openai_error(response, 400, "json_too_deep")
    # At the limit, a stream (whose body the gateway rewrites to ask for usage) is forwarded intact.
    nested = orjson.loads(b"[" * 60 + b"]" * 60)
    body = chat_body(stream=True, metadata={"deep": nested})
    with httpx.stream("POST", gateway.url + CHAT, json=body) as streamed:
        assert streamed.status_code == 200
        streamed.read()
    forwarded = orjson.loads(httpx.get(mock.url + "/_mock/last-request").json()["body"])
    assert forwarded["metadata"] == {"deep": nested}


def test_nothing_in_a_request_redirects_the_upstream(
    gateway: ManagedProcess,
    mock: ManagedProcess,
    mock_factory: Callable[..., ManagedProcess],
    connect: Connect,
) -> None:
    elsewhere = mock_factory()
    attempts = [
        ("POST", CHAT, {"Host": f"127.0.0.1:{elsewhere.port}"}, chat_body()),
        ("POST", CHAT, {"X-Forwarded-Host": f"127.0.0.1:{elsewhere.port}"}, chat_body()),
        ("POST", CHAT, {}, chat_body(model=f"{elsewhere.url}/v1/chat/completions")),
        ("POST", CHAT, {}, chat_body(model=f"@127.0.0.1:{elsewhere.port}/x")),
        ("POST", CHAT + "?base_url=" + elsewhere.url, {}, chat_body()),
        ("POST", "/v1/chat/completions/../../../_mock/reset", {}, chat_body()),
        ("GET", "/v1/models", {"X-Original-URL": f"{elsewhere.url}/v1/models"}, None),
    ]
    for method, path, headers, body in attempts:
        httpx.request(method, gateway.url + path, headers=headers, json=body)
    # A request whose target is an absolute URI naming the other host.
    sock = connect(gateway)
    body = orjson.dumps(chat_body())
    sock.sendall(
        b"POST %s/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (elsewhere.url.encode(), len(body), body)
    )
    read_all(sock)
    assert httpx.get(elsewhere.url + "/_mock/stats").json()["requests"] == 0
    last = httpx.get(mock.url + "/_mock/last-request").json()
    assert last["path"] in ("/v1/chat/completions", "/v1/models")
