"""Anthropic Messages streams redacted per content block: text, partial JSON of tool inputs and
thinking, each chunk-safe in its block, released before the block's ``content_block_stop``."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.apis.anthropic_messages import STREAM_LOCATIONS
from llm_gateway.core.redaction import Redactor, Replacer
from llm_gateway.core.redaction.events import EventRedactor
from llm_gateway.core.sse import SSEDecoder, SSEEvent
from openaimock.completions import sse
from openaimock.messages import message_events

REDACTOR = Redactor(Replacer("mask"))
EMAIL = "jane.doe@example.com"


def typed(kind: str, **fields: Any) -> SSEEvent:
    [event] = SSEDecoder().decode(sse(kind, fields))
    return event


def delta(index: int, kind: str, field: str, value: str) -> SSEEvent:
    return typed("content_block_delta", index=index, delta={"type": kind, field: value})


def texts(events: list[SSEEvent], field: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for event in events:
        data = orjson.loads(event.data or b"{}")
        if data.get("type") == "content_block_delta" and field in data["delta"]:
            out[data["index"]] = out.get(data["index"], "") + data["delta"][field]
    return out


def test_two_blocks_interleaved_are_redacted_each_in_its_own_channel() -> None:
    arguments = orjson.dumps({"to": EMAIL, "body": "hi"}).decode()
    events = [typed("message_start", message={"id": "m", "content": [], "usage": {"input_tokens": 3}})]
    events.append(typed("content_block_start", index=0, content_block={"type": "text", "text": ""}))
    events.append(typed("content_block_start", index=1, content_block={"type": "tool_use", "input": {}}))
    text = f"write to {EMAIL} now"
    for i in range(0, max(len(text), len(arguments)), 4):
        if text[i : i + 4]:
            events.append(delta(0, "text_delta", "text", text[i : i + 4]))
        if arguments[i : i + 4]:
            events.append(delta(1, "input_json_delta", "partial_json", arguments[i : i + 4]))
    events += [typed("content_block_stop", index=0), typed("content_block_stop", index=1)]
    events += [typed("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 9})]
    events.append(typed("message_stop"))
    redactor = EventRedactor(REDACTOR, STREAM_LOCATIONS)
    out = redactor.process(events)
    assert texts(out, "text")[0] == REDACTOR.redact(text, Counter())
    sent = orjson.loads(texts(out, "partial_json")[1])
    assert sent["to"] != EMAIL and sent["body"] == "hi"
    kinds = [orjson.loads(e.data or b"{}")["type"] for e in out]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert b"jane.doe" not in b"".join(e.raw for e in out)
    assert all(e.field(b"event") is not None for e in out)  # every event keeps its event: line


def test_ping_message_delta_and_error_events_pass_as_they_came() -> None:
    events = [
        typed("ping"),
        typed("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 1}),
        typed("error", error={"type": "overloaded_error", "message": "Overloaded"}),
    ]
    assert [e.raw for e in EventRedactor(REDACTOR, STREAM_LOCATIONS).process(events)] == [
        e.raw for e in events
    ]


def test_a_block_index_per_event_keeps_work_linear() -> None:
    """A hostile upstream opening a block per event: each closing finds its block without a scan."""
    events = [delta(i, "text_delta", "text", "hello ") for i in range(3000)]
    events += [typed("content_block_stop", index=i) for i in range(3000)]
    out = EventRedactor(REDACTOR, STREAM_LOCATIONS).process(events)
    assert "".join(texts(out, "text").values()) == "hello " * 3000


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(
        st.sampled_from(["hi", " ", "mail", EMAIL, "+14155552671", ". "]), min_size=1, max_size=15
    ),
    chunk=st.integers(min_value=1, max_value=7),
)
def test_any_chunking_streams_what_whole_text_redaction_gives(words: list[str], chunk: int) -> None:
    text = "".join(words)
    events = SSEDecoder().decode(b"".join(message_events({"model": "m", "messages": []}, text, "m1", chunk)))
    out = EventRedactor(REDACTOR, STREAM_LOCATIONS).process(events)
    assert texts(out, "text").get(0, "") == REDACTOR.redact(text, Counter())


def test_an_event_without_a_type_field_is_read_by_its_event_line_as_the_sdk_does() -> None:
    data = orjson.dumps({"index": 0, "delta": {"type": "text_delta", "text": "mail jane.doe@example.com"}})
    events = [*SSEDecoder().decode(b"event: content_block_delta\ndata: " + data + b"\n\n")]
    events.append(typed("content_block_stop", index=0))
    out = EventRedactor(REDACTOR, STREAM_LOCATIONS).process(events)
    assert b"jane.doe" not in b"".join(e.raw for e in out)


def test_citations_are_redacted_in_deltas_and_block_starts() -> None:
    citation = {"type": "char_location", "cited_text": "jane.doe@example.com lives here", "document_index": 0}
    events = [
        typed(
            "content_block_start",
            index=0,
            content_block={"type": "text", "text": "", "citations": [citation]},
        ),
        typed("content_block_delta", index=0, delta={"type": "citations_delta", "citation": citation}),
        typed("content_block_stop", index=0),
    ]
    out = EventRedactor(REDACTOR, STREAM_LOCATIONS).process(events)
    assert b"jane.doe" not in b"".join(e.raw for e in out)


def test_text_still_held_at_message_stop_goes_out_before_it() -> None:
    events = [
        delta(0, "text_delta", "text", "call +1415555"),
        delta(0, "text_delta", "text", "2671"),
        typed("message_stop"),
    ]
    out = EventRedactor(REDACTOR, STREAM_LOCATIONS).process(events)
    assert orjson.loads(out[-1].data or b"")["type"] == "message_stop"
    assert texts(out, "text")[0] == REDACTOR.redact("call +14155552671", Counter())
