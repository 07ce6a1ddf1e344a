"""Typed event streams (OpenAI Responses) redacted event by event: deltas chunk-safe per channel,
held text released before its channel's closing event, summary events redacted whole, and the
bytes of events nothing changed kept."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.apis.openai_responses import STREAM_LOCATIONS
from llm_gateway.core.redaction import Redactor, Replacer
from llm_gateway.core.redaction.events import MAX_OPEN_CHANNELS, EventRedactor
from llm_gateway.core.sse import SSEDecoder, SSEEvent
from openaimock.completions import sse
from openaimock.responses import response_events

REDACTOR = Redactor(Replacer("mask"))
PAYLOAD = {"model": "m", "input": "hi", "stream": True}


def stream(text: str, chunk_chars: int | None = None) -> list[SSEEvent]:
    return SSEDecoder().decode(b"".join(response_events(PAYLOAD, text, "r1", chunk_chars)))


def payloads(events: list[SSEEvent]) -> list[dict[str, Any]]:
    return [orjson.loads(event.data) for event in events if event.data is not None]


def deltas(events: list[SSEEvent]) -> str:
    return "".join(p["delta"] for p in payloads(events) if p["type"] == "response.output_text.delta")


def whole(text: str) -> str:
    return REDACTOR.redact(text, Counter())


def test_an_address_split_across_deltas_is_redacted_and_the_summaries_agree() -> None:
    text = "mail jane.doe@example.com today"
    out = EventRedactor(REDACTOR, STREAM_LOCATIONS).process(stream(text, chunk_chars=3))
    expected = whole(text)
    assert expected != text
    assert deltas(out) == expected
    by_type = {p["type"]: p for p in payloads(out)}
    assert by_type["response.output_text.done"]["text"] == expected
    assert by_type["response.content_part.done"]["part"]["text"] == expected
    assert by_type["response.output_item.done"]["item"]["content"][0]["text"] == expected
    assert by_type["response.completed"]["response"]["output"][0]["content"][0]["text"] == expected
    assert b"jane.doe" not in b"".join(event.raw for event in out)


def test_held_text_is_released_in_a_delta_of_its_channel_before_the_done_event() -> None:
    out = EventRedactor(REDACTOR, STREAM_LOCATIONS).process(stream("write to a@example.com"))
    kinds = [p["type"] for p in payloads(out)]
    done = kinds.index("response.output_text.done")
    assert kinds[done - 1] == "response.output_text.delta"
    released = [event for event in out if event.field(b"event") == b"response.output_text.delta"][-1]
    assert orjson.loads(released.data or b"")["item_id"] == "msg_r1"
    assert deltas(out) == whole("write to a@example.com")


def test_events_without_entities_keep_their_bytes() -> None:
    """Only a delta whose end could start an entity changes (its tail is held, then released)."""
    events = stream("nothing to see here")
    out = EventRedactor(REDACTOR, STREAM_LOCATIONS).process(events)
    delta = b"response.output_text.delta"
    assert [e.raw for e in out if e.field(b"event") != delta] == [
        e.raw for e in events if e.field(b"event") != delta
    ]
    assert deltas(out) == "nothing to see here"
    kept = [e.raw for e in out if e.field(b"event") == delta][:3]
    assert kept == [e.raw for e in events if e.field(b"event") == delta][:3]


def test_a_stream_cut_before_its_done_event_releases_held_text_at_finish() -> None:
    events = [e for e in stream("call +14155552671") if e.field(b"event") == b"response.output_text.delta"]
    redactor = EventRedactor(REDACTOR, STREAM_LOCATIONS)
    out = redactor.process(events) + redactor.finish()
    assert deltas(out) == whole("call +14155552671")
    assert redactor.found


def test_tool_call_arguments_stay_json_and_are_redacted() -> None:
    arguments = orjson.dumps({"to": "jane.doe@example.com"}).decode()
    base = {"item_id": "fc1", "output_index": 0}
    events = [
        SSEEvent.of_data(
            orjson.dumps({"type": "response.function_call_arguments.delta", **base, "delta": piece})
        )
        for piece in (arguments[:9], arguments[9:20], arguments[20:])
    ]
    events.append(
        SSEEvent.of_data(
            orjson.dumps({"type": "response.function_call_arguments.done", **base, "arguments": arguments})
        )
    )
    out = payloads(EventRedactor(REDACTOR, STREAM_LOCATIONS).process(events))
    streamed = "".join(p["delta"] for p in out if p["type"].endswith(".delta"))
    assert orjson.loads(streamed)["to"] != "jane.doe@example.com"
    assert streamed == out[-1]["arguments"]


PII = ["jane.doe@example.com", "+14155552671", "4111 1111 1111 1111", "a@b.io"]


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(st.sampled_from(["hello", " ", "mail", ". ", "to", "\n", *PII]), min_size=1, max_size=20),
    chunk=st.integers(min_value=1, max_value=9),
    cut=st.integers(min_value=1, max_value=6),
)
def test_any_chunking_and_any_batching_stream_what_whole_text_redaction_gives(
    words: list[str], chunk: int, cut: int
) -> None:
    text = "".join(words)
    events = stream(text, chunk_chars=chunk)
    redactor = EventRedactor(REDACTOR, STREAM_LOCATIONS)
    out: list[SSEEvent] = []
    for start in range(0, len(events), cut):
        out.extend(redactor.process(events[start : start + cut]))
    out.extend(redactor.finish())
    expected = whole(text)
    assert deltas(out) == expected
    done = [p for p in payloads(out) if p["type"] == "response.output_text.done"]
    assert done[0]["text"] == expected


def typed(kind: str, **fields: object) -> SSEEvent:
    [event] = SSEDecoder().decode(sse(kind, dict(fields)))
    return event


def test_reasoning_summaries_and_refusals_are_redacted_in_every_event_that_carries_them() -> None:
    summary = {"item_id": "rs_1", "output_index": 0, "summary_index": 0}
    events = [
        typed("response.reasoning_summary_text.delta", **summary, delta="The user, jane.do"),
        typed("response.reasoning_summary_text.delta", **summary, delta="e@example.com, asks"),
        typed("response.reasoning_summary_text.done", **summary, text="The user, jane.doe@example.com, asks"),
        typed(
            "response.output_item.done",
            output_index=1,
            item={
                "type": "message",
                "content": [{"type": "refusal", "refusal": "not for jane.doe@example.com"}],
            },
        ),
        typed(
            "response.completed",
            response={
                "output": [
                    {
                        "type": "reasoning",
                        "summary": [{"type": "summary_text", "text": "for jane.doe@example.com"}],
                    }
                ]
            },
        ),
    ]
    out = EventRedactor(REDACTOR, STREAM_LOCATIONS).process(events)
    assert b"jane.doe" not in b"".join(event.raw for event in out)
    streamed = "".join(p["delta"] for p in payloads(out) if p["type"].endswith("summary_text.delta"))
    assert streamed == whole("The user, jane.doe@example.com, asks")


def test_held_text_is_released_before_the_last_event_when_no_done_event_came() -> None:
    place = {"item_id": "m", "output_index": 0, "content_index": 0}
    events = [
        typed("response.output_text.delta", **place, delta="call +1415555"),
        typed("response.output_text.delta", **place, delta="2671"),
        typed("response.completed", response={"output": []}),
    ]
    out = EventRedactor(REDACTOR, STREAM_LOCATIONS).process(events)
    assert [p["type"] for p in payloads(out)][-1] == "response.completed"
    assert deltas(out) == whole("call +14155552671")


def test_an_upstream_that_opens_channel_after_channel_holds_bounded_state() -> None:
    redactor = EventRedactor(REDACTOR, STREAM_LOCATIONS)
    events = [
        typed(
            "response.output_text.delta",
            item_id=f"m{i}",
            output_index=0,
            content_index=0,
            delta="mail a@b.io x",
        )
        for i in range(MAX_OPEN_CHANNELS + 50)
    ]
    out = redactor.process(events)
    assert len(redactor._channels) == MAX_OPEN_CHANNELS
    assert b"a@b.io" not in b"".join(event.raw for event in out + redactor.finish())


def test_hostile_channel_names_and_deep_values_cost_no_crash() -> None:
    deep = b"[" * 900 + b'"x"' + b"]" * 900  # orjson reads it; nothing may try to write it back
    events: list[SSEEvent] = []
    for kind, field in (
        (b"response.output_text.delta", b'"delta":"hello"'),
        (b"response.output_text.done", b'"text":"hello"'),
    ):
        data = b'{"type":"' + kind + b'","item_id":' + deep + b',"content_index":0,' + field + b"}"
        events.extend(SSEDecoder().decode(b"data: " + data + b"\n\n"))
    assert deltas(EventRedactor(REDACTOR, STREAM_LOCATIONS).process(events)) == "hello"
