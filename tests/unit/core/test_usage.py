from __future__ import annotations

from typing import Any

import orjson
import pytest

from llm_gateway.core.apis import CHAT_COMPLETIONS, EMBEDDINGS
from llm_gateway.core.apis.openai_streams import ask_for_stream_usage
from llm_gateway.core.sse import SSEDecoder, SSEEvent
from llm_gateway.core.usage import StreamUsage, Usage, usage_of
from openaimock.completions import stream_events

PAYLOAD = {"model": "gpt-test", "messages": [{"role": "user", "content": "one two three"}], "stream": True}


def decoded(events: list[bytes]) -> list[SSEEvent]:
    return SSEDecoder().decode(b"".join(events))


def event(raw: bytes) -> SSEEvent:
    [decoded_event] = SSEDecoder().decode(raw + b"\n\n")
    return decoded_event


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}, Usage(3, 5)),
        ({"usage": None}, None),
        ({}, None),
        ({"usage": {"prompt_tokens": -1, "completion_tokens": 5}}, None),
        ({"usage": {"prompt_tokens": True, "completion_tokens": 5}}, None),
        ({"usage": {"prompt_tokens": "3", "completion_tokens": 5}}, None),
        ([1, 2], None),
    ],
)
def test_usage_of_accepts_only_well_formed_counts(payload: Any, expected: Usage | None) -> None:
    assert usage_of(payload, CHAT_COMPLETIONS.usage) == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 8, "total_tokens": 8}, Usage(8, 0)),
        ({"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}, Usage(8, 0)),
        ({"total_tokens": 8}, None),
    ],
)
def test_an_api_without_output_tokens_counts_zero_of_them(usage: Any, expected: Usage | None) -> None:
    assert usage_of({"usage": usage}, EMBEDDINGS.usage) == expected


@pytest.mark.parametrize(
    ("options", "asked", "after"),
    [
        (None, False, {"include_usage": True}),
        ({}, False, {"include_usage": True}),
        ({"include_usage": False}, False, {"include_usage": True}),
        ({"include_usage": True}, True, {"include_usage": True}),
        ("nonsense", False, "nonsense"),
    ],
)
def test_ask_for_stream_usage_sets_the_option_and_says_whether_the_client_asked(
    options: Any, asked: bool, after: Any
) -> None:
    payload: dict[str, Any] = {"stream": True}
    if options is not None:
        payload["stream_options"] = options
    assert ask_for_stream_usage(payload) is asked
    assert payload["stream_options"] == after


def test_the_usage_chunk_is_removed_when_the_client_did_not_ask() -> None:
    events = decoded(stream_events({**PAYLOAD, "stream_options": {"include_usage": True}}, "a b", "id"))
    watcher = StreamUsage((CHAT_COMPLETIONS.usage,), "choices", forward_usage=False)
    # Cut into arbitrary batches, as the relay sees them.
    out = watcher.process(events[:2]) + watcher.process(events[2:5]) + watcher.process(events[5:])
    assert watcher.usage == Usage(3, 2)
    assert watcher.model == "gpt-test"
    assert len(out) == len(events) - 1
    assert all(b'"choices":[]' not in event.raw for event in out)
    assert out[-1].data == b"[DONE]"


def test_the_usage_chunk_is_kept_when_the_client_asked() -> None:
    events = decoded(stream_events({**PAYLOAD, "stream_options": {"include_usage": True}}, "a b", "id"))
    watcher = StreamUsage((CHAT_COMPLETIONS.usage,), "choices", forward_usage=True)
    assert watcher.process(events) == events
    assert watcher.usage == Usage(3, 2)


def test_a_stream_without_usage_passes_unchanged_and_reports_none() -> None:
    events = decoded(stream_events(PAYLOAD, "a b", "id"))
    watcher = StreamUsage((CHAT_COMPLETIONS.usage,), "choices", forward_usage=False)
    comment = event(b": comment")
    assert watcher.process([comment, *events]) == [comment, *events]
    assert watcher.usage is None
    assert watcher.model == "gpt-test"


def test_usage_on_a_chunk_with_choices_is_counted_but_the_chunk_is_kept() -> None:
    # Some OpenAI-compatible servers put usage on the last content chunk instead.
    chunk = {
        "choices": [{"index": 0, "delta": {"content": "x"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }
    usage_chunk = event(b"data: " + orjson.dumps(chunk))
    watcher = StreamUsage((CHAT_COMPLETIONS.usage,), "choices", forward_usage=False)
    assert watcher.process([usage_chunk]) == [usage_chunk]
    assert watcher.usage == Usage(1, 1)


def _framed(data: bytes, number: int) -> bytes:
    """An event as some upstreams frame it: an id and an event type before the data."""
    return b"id: " + str(number).encode() + b"\nevent: message\ndata: " + data + b"\n\n"


def test_usage_is_found_and_removed_when_events_carry_id_and_event_lines() -> None:
    plain = stream_events({**PAYLOAD, "stream_options": {"include_usage": True}}, "a b", "id")
    wire = b"".join(_framed(raw.removeprefix(b"data: ").rstrip(b"\n"), n) for n, raw in enumerate(plain))
    watcher = StreamUsage((CHAT_COMPLETIONS.usage,), "choices", forward_usage=False)
    out = watcher.process(SSEDecoder().decode(wire))
    assert watcher.usage == Usage(3, 2)
    assert watcher.model == "gpt-test"
    payloads = [orjson.loads(e.data) for e in out if e.data is not None and e.data != b"[DONE]"]
    assert payloads and all(payload["choices"] for payload in payloads)  # no usage-only chunk left
    assert all(e.raw.startswith(b"id: ") for e in out)  # the other events keep their lines
