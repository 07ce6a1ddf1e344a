"""Request bodies and waits as clients send them, over a real socket: compressed bodies, a vision
request with a photo, and a reasoning model that thinks for longer than a stream may stay silent."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import time
import zlib
from pathlib import Path

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
    waits = {"200": {"STREAM_KEEPALIVE_SECS": "0.5"}, "504": {"NON_STREAM_TIMEOUT_SECS": "1"}}
    for status, env in waits.items():  # 200: was 504 after the stream idle timeout
        gateway = gateway_factory(STREAM_IDLE_TIMEOUT_SECS="1", **env)
        response = httpx.post(
            gateway.url + CHAT,
            json=chat_body(model="mock:latency-ms=2500"),
            headers={"X-Api-Key": "o1"},
            timeout=30,
        )
        assert str(response.status_code) == status, response.text


def peak_rss_mb(process: ManagedProcess) -> float:
    """The gateway process's peak resident memory so far (VmHWM), in MiB."""
    status = Path(f"/proc/{process.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def test_compressed_bombs_in_parallel_stay_within_the_replicas_body_budget(
    gateway_factory: GatewayFactory,
) -> None:
    """The hostile run's finding: 30 bombs of 58 KB each took the replica to 1.6 GB of memory."""
    gateway = gateway_factory(MAX_BUFFERED_BODY_BYTES=str(64 << 20))
    assert httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "warm"}).status_code == 200
    before = peak_rss_mb(gateway)
    bomb = gzip.compress(b" " * (60 * 1000 * 1000))

    async def fire() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        gateway.url + CHAT,
                        content=bomb,
                        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                    )
                    for _ in range(30)
                )
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(fire())
    assert set(statuses) <= {413, 503} and 413 in statuses
    print(f"peak RSS {before:.0f} MiB before, {peak_rss_mb(gateway):.0f} MiB after")
    assert peak_rss_mb(gateway) - before < 120  # the budget (64 MiB) and the steps in flight
    assert httpx.get(gateway.url + "/healthz").status_code == 200


def test_a_small_body_of_millions_of_elements_is_refused_before_it_is_parsed(gateway: ManagedProcess) -> None:
    """The hostile run's finding: 47 KB of gzip (16 million `[]`) held the event loop for 9 s."""
    body = (
        b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"x":['
        + b"[]," * 16_000_000
        + b"[]]}"
    )
    started = time.monotonic()
    response = httpx.post(
        gateway.url + CHAT,
        content=gzip.compress(body, 9),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=60,
    )
    assert_openai_error(response, 400, "json_too_many_elements")
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("model", ["gpt\ud800x", "M" * 2_000_000])
def test_a_model_name_no_label_can_hold_is_refused_and_metrics_keep_working(
    gateway: ManagedProcess, model: str
) -> None:
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    body = body.replace(b'"m"', json.dumps(model).encode())  # json: orjson will not write a lone surrogate
    response = httpx.post(gateway.url + CHAT, content=body, headers={"Content-Type": "application/json"})
    assert_openai_error(response, 400, "invalid_model")
    metrics = httpx.get(gateway.url + "/metrics")
    assert metrics.status_code == 200 and len(metrics.content) < 1_000_000
