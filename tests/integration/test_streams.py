"""Upstream stream behaviours seen in the field, replayed byte for byte by the mock's scripted mode
against the real gateway, and read with the official OpenAI SDK where a user would."""

from __future__ import annotations

import random
import threading
import time
from typing import Any, get_args

import httpx
import openai
import orjson
import pytest

from llm_gateway.telemetry.exchange import StreamOutcome
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, chat_body, metric_value, sse_data
from tests.integration.scrape import scrape, value
from tests.support import ManagedProcess

ENVELOPE = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def chunk(delta: dict[str, Any], finish: str | None = None, **choice: Any) -> bytes:
    body = {**ENVELOPE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **choice}]}
    return orjson.dumps(body)


def usage_chunk() -> bytes:
    return orjson.dumps({**ENVELOPE, "choices": [], "usage": USAGE})


def script(mock: ManagedProcess, name: str, writes: list[bytes]) -> str:
    """Register ``writes`` (one write each) with the mock; the model name that replays them."""
    spec = {"writes": [w.decode() for w in writes]}
    httpx.put(f"{mock.url}/_mock/scripts/{name}", content=orjson.dumps(spec)).raise_for_status()
    return f"mock:script={name}"


def sdk(gateway: ManagedProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-client-demo", max_retries=0, timeout=30)


def read_with_sdk(gateway: ManagedProcess, model: str) -> tuple[str, int]:
    """Stream as the SDK docs show (``chunk.choices[0].delta.content``): the text and the chunk count."""
    text, count = [], 0
    for part in sdk(gateway).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], stream=True
    ):
        count += 1
        text.append(part.choices[0].delta.content or "")  # IndexError on a usage-only chunk
    return "".join(text), count


def test_id_and_event_lines_keep_usage_metered_and_hidden_from_a_client_that_did_not_ask(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    data = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hello"}),
            chunk({"content": " there"}), chunk({}, "stop"), usage_chunk(), b"[DONE]"]  # fmt: skip
    writes = [b"id: %d\nevent: message\ndata: %s\n\n" % (n, d) for n, d in enumerate(data)]
    model = script(mock, "framed", writes)
    before = metric_value(
        gateway.url,
        'gen_ai_client_token_usage_sum{gen_ai_request_model="mock:script=framed",gen_ai_token_type="output"}',
    )
    assert read_with_sdk(gateway, model) == ("Hello there", 4)
    after = metric_value(
        gateway.url,
        'gen_ai_client_token_usage_sum{gen_ai_request_model="mock:script=framed",gen_ai_token_type="output"}',
    )
    assert after - before == 7


def test_a_last_done_without_its_blank_line_ends_the_stream_cleanly(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    writes = [b"data: " + chunk({"content": "complete answer"}) + b"\n\n",
              b"data: " + chunk({}, "stop") + b"\n\n", b"data: [DONE]\n"]  # fmt: skip
    model = script(mock, "done-no-blank", writes)
    assert read_with_sdk(gateway, model) == ("complete answer", 2)
    raw = httpx.post(gateway.url + CHAT, json=chat_body(model=model, stream=True)).content
    assert b"stream_truncated" not in raw and raw.endswith(b"data: [DONE]\n\n")


def test_a_stream_cut_inside_a_line_ends_with_stream_truncated(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    model = script(
        mock, "cut", [b"data: " + chunk({"content": "par"}) + b"\n\n", b'data: {"choices": [{"del']
    )
    payloads = sse_data(httpx.post(gateway.url + CHAT, json=chat_body(model=model, stream=True)).content)
    assert orjson.loads(payloads[-1])["error"]["code"] == "stream_truncated"


def test_redacted_events_keep_their_id_and_event_lines(gateway: ManagedProcess, mock: ManagedProcess) -> None:
    data = [chunk({"content": "mail jane.doe@example.com now"}), chunk({}, "stop"), b"[DONE]"]
    model = script(
        mock, "framed-pii", [b"id: %d\nevent: message\ndata: %s\n\n" % (n, d) for n, d in enumerate(data)]
    )
    raw = httpx.post(gateway.url + CHAT, json=chat_body(model=model, stream=True)).content
    assert b"jane.doe" not in raw
    assert raw.startswith(b"id: 0\nevent: message\ndata: ") and b"id: 1\nevent: message\n" in raw


def test_the_issue_logprob_example_leaks_the_address_nowhere(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    deltas = ["mail ", "jane", ".doe", "@example", ".com", " ok"]

    def entry(token: str) -> dict[str, Any]:
        alternative = {"token": token, "bytes": list(token.encode()), "logprob": -0.5}
        return {**alternative, "top_logprobs": [alternative]}

    data = [chunk({"content": d}, logprobs={"content": [entry(d)]}) for d in deltas]
    model = script(mock, "logprobs", [b"data: " + d + b"\n\n" for d in [*data, chunk({}, "stop"), b"[DONE]"]])
    raw = httpx.post(gateway.url + CHAT, json=chat_body(model=model, stream=True)).content
    assert b"jane" not in raw and b"106, 97, 110, 101" not in raw  # not as text, not as bytes
    stream = sdk(gateway).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "x"}], stream=True
    )
    parts = list(stream)
    assert "".join(p.choices[0].delta.content or "" for p in parts) == "mail j***e@example.com ok"
    tokens = [e.token for p in parts if p.choices[0].logprobs for e in p.choices[0].logprobs.content or []]
    assert tokens == ["mail ", " ok"]


def test_tool_call_finish_chunk_is_forwarded_unchanged_and_arguments_parse(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    args = '{"to": "jane.doe@example.com", "card": 4111111111111111}'
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "send", "arguments": ""}}
    data = [chunk({"role": "assistant", "tool_calls": [first]})]
    data += [
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 4]}}]})
        for i in range(0, len(args), 4)
    ]
    finish = chunk({}, "tool_calls")
    model = script(mock, "tools", [b"data: " + d + b"\n\n" for d in [*data, finish, b"[DONE]"]])
    raw = httpx.post(gateway.url + CHAT, json=chat_body(model=model, stream=True)).content
    assert b"data: " + finish + b"\n\n" in raw  # "delta": {} is not turned into {"content": ""}
    stream = sdk(gateway).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "x"}], stream=True
    )
    arguments = "".join(
        call.function.arguments or ""
        for p in stream
        for call in p.choices[0].delta.tool_calls or []
        if call.function
    )
    assert orjson.loads(arguments) == {"to": "j***e@example.com", "card": "CC_MASKED_LAST4_1111"}


def test_a_hex_stream_flows_and_the_replica_keeps_answering(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    # The issue's example: 1,600 deltas of 25 hex characters, 50 events per upstream write.
    rng = random.Random(7)
    deltas = ["".join(rng.choice("0123456789abcdef") for _ in range(25)) for _ in range(1600)]
    events = [b"data: " + chunk({"content": d}) + b"\n\n" for d in deltas] + [
        b"data: " + chunk({}, "stop") + b"\n\n"
    ]
    writes = [b"".join(events[i : i + 50]) for i in range(0, len(events), 50)] + [b"data: [DONE]\n\n"]
    model = script(mock, "hex", writes)
    health: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=10) as client:
            while not done.is_set() and len(health) < 2000:
                started = time.monotonic()
                assert client.get(gateway.url + "/healthz").status_code == 200
                health.append(time.monotonic() - started)
                time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        text, _ = read_with_sdk(gateway, model)
    finally:
        done.set()
        prober.join()
    assert text == "".join(deltas)
    assert health and max(health) < 5  # was 47 s; the speed itself is measured in bench/


@pytest.mark.parametrize("framing", ["\n", "\r\n", "\r"])
def test_every_line_ending_streams_the_same_text(
    gateway: ManagedProcess, mock: ManagedProcess, framing: str
) -> None:
    data = [chunk({"content": "one "}), chunk({"content": "two"}), chunk({}, "stop"), b"[DONE]"]
    wire = b"".join(b"data:" + d + b"\n\n" for d in data).replace(b"\n", framing.encode())
    model = script(
        mock,
        f"framing-{len(framing)}-{framing == chr(13)}",
        [wire[i : i + 9] for i in range(0, len(wire), 9)],
    )
    assert read_with_sdk(gateway, model) == ("one two", 3)


def _healthz_while(gateway: ManagedProcess, work: Any) -> tuple[Any, float]:
    """Run ``work()`` while probing ``/healthz``; its result and the slowest probe, in seconds."""
    slowest, done = [0.0], threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=30) as client:
            while not done.is_set():
                started = time.monotonic()
                assert client.get(gateway.url + "/healthz").status_code == 200
                slowest[0] = max(slowest[0], time.monotonic() - started)
                time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        result = work()
    finally:
        done.set()
        prober.join()
    return result, slowest[0]


def test_a_large_body_dense_with_candidates_does_not_stall_the_replica(
    gateway: ManagedProcess, mock: ManagedProcess
) -> None:
    # Seconds of redaction CPU (digits that look like phone numbers everywhere), going up in
    # the request and coming back in the answer: done off the event loop, probes keep answering.
    dense = "12 34 " * 15_000  # 90 KB: over the 64 KiB that sends work to a thread
    body = chat_body(dense + " mail jane.doe@example.com", model="mock:echo")
    response, slowest = _healthz_while(
        gateway, lambda: httpx.post(gateway.url + CHAT, json=body, timeout=120)
    )
    assert response.status_code == 200
    assert "j***e@example.com" in response.text and "jane.doe" not in response.text
    assert slowest < 1.0, slowest


def test_a_stream_ends_for_the_client_at_done_however_long_the_upstream_keeps_its_connection(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory()
    events = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi"}), chunk({}, "stop")]
    first = b"".join(b"data: %s\n\n" % event for event in events) + b"data: [DONE]\n\n"
    # The upstream sends everything, then holds its connection 3 s before ending the body.
    spec = {"writes": [first.decode(), ": lingering\n\n"], "write_delay_ms": 3000}
    httpx.put(f"{mock.url}/_mock/scripts/linger", content=orjson.dumps(spec)).raise_for_status()
    started = time.monotonic()
    assert read_with_sdk(gateway, "mock:script=linger") == ("Hi", 3)
    assert time.monotonic() - started < 2.0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        samples = scrape(gateway.url)
        if sum(value(samples, "gateway_streams_total", outcome=o) for o in get_args(StreamOutcome)) >= 1:
            break
        time.sleep(0.05)
    assert value(samples, "gateway_streams_total", outcome="completed") == 1
    assert value(samples, "gateway_streams_total", outcome="client_cancelled") == 0
