"""Request bodies and waits as clients send them, over a real socket: compressed bodies, a vision
request with a photo, and a reasoning model that thinks for longer than a stream may stay silent."""

from __future__ import annotations

import base64
import gzip
import os
import zlib

import httpx
import openai
import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, assert_openai_error, chat_body
from tests.support import ManagedProcess

BODY = orjson.dumps(chat_body("mail jane.doe@example.com please", model="mock:echo"))


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [("gzip", gzip.compress), ("deflate", zlib.compress)],
)
def test_a_compressed_body_is_decoded_redacted_and_answered(
    gateway: ManagedProcess, mock: ManagedProcess, encoding: str, encode: object
) -> None:
    data = encode(BODY)  # type: ignore[operator]
    response = httpx.post(
        gateway.url + CHAT,
        content=data,
        headers={"Content-Type": "application/json", "Content-Encoding": encoding, "X-Api-Key": "zip"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "mail j***e@example.com please"
    forwarded = httpx.get(mock.url + "/_mock/last-request").json()
    assert "content-encoding" not in forwarded["headers"]  # the upstream gets plain JSON
    assert "jane.doe" not in forwarded["body"]


def test_other_encodings_and_bombs_are_refused_clearly(gateway: ManagedProcess) -> None:
    headers = {"Content-Type": "application/json", "X-Api-Key": "zip"}
    brotli = httpx.post(gateway.url + CHAT, content=BODY, headers={**headers, "Content-Encoding": "br"})
    assert "'br'" in assert_openai_error(brotli, 415, "unsupported_content_encoding")["message"]
    bomb = gzip.compress(b" " * (60 * 1024 * 1024))  # 60 MiB of spaces in about 60 KB
    refused = httpx.post(gateway.url + CHAT, content=bomb, headers={**headers, "Content-Encoding": "gzip"})
    assert_openai_error(refused, 413, "request_too_large")
    assert httpx.get(gateway.url + "/healthz").status_code == 200


def test_a_vision_request_with_a_photo_passes_and_its_image_is_not_scanned(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    # A 900 KB photo, base64 in a data URL (1.2 MB on the wire: over the old 1 MiB default). Its
    # bytes happen to spell an address: image data is not text, so it must reach the upstream as is.
    photo = os.urandom(900_000 - 40) + b" jane.doe@example.com "
    url = "data:image/jpeg;base64," + base64.b64encode(photo).decode()
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="vision", max_retries=0) as client:
        completion = client.chat.completions.create(
            model="mock:echo",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is in this photo? reply to jane.doe@example.com"},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            ],
        )
    assert completion.choices[0].message.content == "what is in this photo? reply to j***e@example.com"
    forwarded = orjson.loads(httpx.get(mock.url + "/_mock/last-request").json()["body"])
    assert forwarded["messages"][0]["content"][1]["image_url"]["url"] == url


def test_a_non_stream_answer_may_take_longer_than_a_stream_may_stay_silent(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    """With TIMEOUT_SECS unset, a reasoning model's slow non-stream answer is waited for
    (NON_STREAM_TIMEOUT_SECS), while a silent stream still ends after STREAM_IDLE_TIMEOUT_SECS."""
    gateway = gateway_factory(STREAM_IDLE_TIMEOUT_SECS="1", STREAM_KEEPALIVE_SECS="0.5")
    slow = httpx.post(
        gateway.url + CHAT,
        json=chat_body(model="mock:latency-ms=2500"),
        headers={"X-Api-Key": "o1"},
        timeout=30,
    )
    assert slow.status_code == 200  # was 504 after the stream idle timeout
    bounded = gateway_factory(STREAM_IDLE_TIMEOUT_SECS="1", NON_STREAM_TIMEOUT_SECS="1")
    late = httpx.post(
        bounded.url + CHAT,
        json=chat_body(model="mock:latency-ms=2500"),
        headers={"X-Api-Key": "o1"},
        timeout=30,
    )
    assert_openai_error(late, 504, "upstream_timeout")
