from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core import json_codec
from llm_gateway.core.apis.anthropic_messages import MESSAGES
from llm_gateway.core.apis.openai_chat import LOCATIONS as CHAT
from llm_gateway.core.redaction import (
    Entity,
    Redactor,
    Replacer,
    SSERedactor,
    redact_request,
    redact_response,
)
from llm_gateway.core.sse import SSEDecoder, SSEEvent

REDACTOR = Redactor(Replacer("placeholder"))
DONE = SSEEvent.of_data(b"[DONE]")


def chunk(content: str | None, index: object = 0, finish: str | None = None, **choice: object) -> SSEEvent:
    delta = {} if content is None else {"content": content}
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish, **choice}],
    }
    return SSEEvent.of_data(orjson.dumps(body))


def payload(event: SSEEvent) -> dict:  # type: ignore[type-arg]
    assert event.data is not None
    return orjson.loads(event.data)  # type: ignore[no-any-return]


def contents(events: list[SSEEvent]) -> list[str | None]:
    out = []
    for event in events:
        if event.data == b"[DONE]":
            out.append("[DONE]")
            continue
        choice = payload(event)["choices"][0]
        out.append(choice["delta"].get("content"))
    return out


def test_request_messages_strings_and_text_parts_are_redacted_other_fields_untouched() -> None:
    payload = {
        "model": "m",
        "user": "jane@example.com",
        "messages": [
            {"role": "system", "content": "card 4242 4242 4242 4242"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "mail jane@example.com"}, {"type": "image_url"}],
            },
        ],
    }
    found: Counter[Entity] = Counter()
    assert redact_request(payload, REDACTOR, found, CHAT)
    assert payload["messages"][0]["content"] == "card [CREDIT_CARD]"  # type: ignore[index]
    assert payload["messages"][1]["content"][0]["text"] == "mail [EMAIL]"  # type: ignore[index]
    assert payload["user"] == "jane@example.com"
    assert found == {Entity.CREDIT_CARD: 1, Entity.EMAIL: 1}


def test_request_without_pii_reports_no_change() -> None:
    payload = {"messages": [{"role": "user", "content": "hello"}]}
    assert not redact_request(payload, REDACTOR, Counter(), CHAT)


def test_completion_content_is_redacted_and_unchanged_bodies_are_kept_byte_for_byte() -> None:
    body = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}'
    assert redact_response(body, orjson.loads(body), REDACTOR, Counter(), CHAT) is body
    pii = orjson.dumps(
        {"choices": [{"message": {"content": "call +14155552671"}}], "usage": {"total_tokens": 3}}
    )
    redacted = orjson.loads(redact_response(pii, orjson.loads(pii), REDACTOR, Counter(), CHAT))
    assert redacted == {"choices": [{"message": {"content": "call [PHONE]"}}], "usage": {"total_tokens": 3}}


def test_a_completion_body_that_is_not_json_is_redacted_as_text() -> None:
    assert (
        redact_response(b"oops: call +14155552671", None, REDACTOR, Counter(), CHAT) == b"oops: call [PHONE]"
    )


def test_stream_email_split_across_events_is_redacted_and_the_structure_kept() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    events = [chunk("Write to jane.do"), chunk("e@example.com now"), chunk(None, finish="stop"), DONE]
    out = sse.process(events)
    assert contents(out) == ["Write to ", "[EMAIL] ", "now", "[DONE]"]  # "now" could start an email
    assert sse.found == {Entity.EMAIL: 1}


def test_finish_reason_releases_the_held_text_in_that_event() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    out = sse.process([chunk("ends with jane.do"), chunk(None, finish="stop")])
    assert contents(out) == ["ends with ", "jane.do"]
    assert payload(out[1])["choices"][0]["finish_reason"] == "stop"


def test_held_text_at_done_goes_out_in_an_extra_chunk_before_done() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    out = sse.process([chunk("tail 4242"), DONE])
    assert contents(out) == ["tail ", "4242", "[DONE]"]
    assert payload(out[1])["id"] == "c1"


def test_choices_are_redacted_independently() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    events = [chunk("a jane.do", 0), chunk("b jane.do", 1), chunk("e@x.com ok", 0), chunk("ugh ok", 1)]
    out = [released for event in events for released in sse.process([event])]  # one event per read
    assert contents(out) == ["a ", "b ", "[EMAIL] ", "jane.dough "]


def test_chunks_read_together_keep_their_text_in_place_when_later_text_shows_it_is_safe() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    events = [chunk("a jane.do", 0), chunk("b jane.do", 1), chunk("e@x.com ok", 0), chunk("ugh ok", 1)]
    out = sse.process(events)
    # Choice 1 is no email once "ugh" is read: its chunk goes out untouched, only "ok" (which could
    # still start one) is held. Choice 0 has an email across its chunks: redacted chunk by chunk.
    assert contents(out) == ["a ", "b jane.do", "[EMAIL] ", "ugh "]
    assert out[1] is events[1]


def test_text_held_at_the_end_of_a_read_opens_the_next_reads_first_chunk() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    assert contents(sse.process([chunk("mail jane")])) == ["mail "]  # "jane" may start an e-mail
    later = [chunk(".doe ok"), chunk(" bye")]
    assert contents(sse.process(later)) == ["jane.doe ok", " "]  # no e-mail; "bye" may start one
    assert contents(sse.process([chunk(None, finish="stop")])) == ["bye"]


_PIECES = [
    "jane",
    ".doe",
    "@",
    "x.com",
    " ",
    "4242",
    " 4242 4242 4242",
    "-",
    "ok",
    "+1 415",
    " 555 0100",
    "é",
]


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(_PIECES), min_size=1, max_size=20),
    cuts=st.lists(st.integers(0, 20), max_size=5),
)
def test_chunks_read_in_any_grouping_stream_what_whole_text_redaction_gives(
    pieces: list[str], cuts: list[int]
) -> None:
    events = [chunk(piece) for piece in pieces] + [chunk(None, finish="stop")]
    for grouping in (sorted(set(cuts)), list(range(len(events)))):  # as read together, one by one
        sse, out, start = SSERedactor(REDACTOR, CHAT), [], 0
        for cut in [*grouping, len(events)]:
            out += sse.process(events[start:cut])
            start = max(start, cut)
        assert "".join(text or "" for text in contents(out)) == REDACTOR.redact("".join(pieces))


def test_events_without_content_pass_through_unchanged() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    usage = SSEEvent.of_data(b'{"id":"c1","choices":[],"usage":{"total_tokens":3}}')
    [comment] = SSEDecoder().decode(b": keep-alive\n\n")
    assert sse.process([usage, comment]) == [usage, comment]


def test_plain_text_events_are_forwarded_as_they_came() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    event = chunk("Hello there ")
    assert sse.process([event]) == [event]


def test_non_json_data_is_redacted_as_text() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    out = sse.process([SSEEvent.of_data(b"mail jane@example.com")])
    assert [event.raw for event in out] == [b"data: mail [EMAIL]\n\n"]


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_the_stream_redactor_takes_any_bytes_without_failing(raw: bytes, cuts: list[int]) -> None:
    decoder, sse = SSEDecoder(), SSERedactor(REDACTOR, CHAT)
    start = 0
    for cut in sorted(c for c in cuts if c <= len(raw)):
        sse.process(decoder.decode(raw[start:cut]))
        start = cut
    out = sse.process(decoder.decode(raw[start:])) + sse.finish()
    assert all(isinstance(event, SSEEvent) for event in out)


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.text("abcdefghij ", min_size=1, max_size=8), min_size=1, max_size=15))
def test_text_without_entities_streams_through_exactly(words: list[str]) -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    events = [chunk(word) for word in words] + [chunk(None, finish="stop"), DONE]
    out = sse.process(events[:3]) + sse.process(events[3:])
    text = "".join(
        choice["delta"].get("content") or ""
        for event in out
        if event.data != b"[DONE]"
        for choice in payload(event)["choices"]
    )
    assert text == "".join(words)
    assert out[-1] == DONE


def test_streamed_tool_call_arguments_sent_as_a_json_object_are_redacted() -> None:
    call = {
        "index": 0,
        "id": "call_1",
        "function": {"name": "mail", "arguments": {"to": "jane.doe@example.com"}},
    }
    event = {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}
    [out] = SSERedactor(REDACTOR, CHAT).process([SSEEvent.of_data(orjson.dumps(event))])
    sent = payload(out)["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
    assert sent == {"to": REDACTOR.redact("jane.doe@example.com")} != {"to": "jane.doe@example.com"}


@pytest.mark.parametrize("index", ["0", 0.0, False])
def test_a_choice_index_the_sdks_read_as_zero_is_the_same_channel(index: object) -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    events = [chunk("mail jane."), chunk("doe@example.com ok", index=index), chunk(None, finish="stop")]
    out = [released for event in events for released in sse.process([event])]
    assert "".join(text or "" for text in contents(out)) == REDACTOR.redact("mail jane.doe@example.com ok")


def test_documents_with_a_text_source_are_redacted_and_base64_ones_left_whole() -> None:
    pdf = "JVBERi0xLjQKMTIzLTQ1LTY3ODkgamFuZS5kb2VAZXhhbXBsZS5jb20="
    text = {"type": "text", "media_type": "text/plain", "data": "SSN jane.doe@example.com"}
    content = {"type": "content", "content": [{"type": "text", "text": "a@b.io"}]}
    encoded = {"type": "base64", "media_type": "application/pdf", "data": pdf}
    blocks = [{"type": "document", "source": source} for source in (text, content, encoded)]
    payload = {"messages": [{"role": "user", "content": blocks}]}
    assert redact_request(payload, REDACTOR, Counter(), MESSAGES.locations)
    assert "jane.doe" not in text["data"]
    assert "a@b.io" not in content["content"][0]["text"]  # type: ignore[index]
    assert encoded["data"] == pdf


@pytest.mark.parametrize("depth", [300, 1000])
def test_a_tool_input_nested_deep_is_redacted_without_recursion_and_written_back(depth: int) -> None:
    deep: Any = {"to": "jane.doe@example.com"}
    for _ in range(depth):
        deep = {"x": deep}
    payload = {"content": [{"type": "tool_use", "input": deep}]}
    dumps = json_codec.loads(b"{}")[1]  # the writer the gateway uses for a body orjson read
    try:
        out = redact_response(b"{}", payload, REDACTOR, Counter(), MESSAGES.locations, dumps=dumps)
    except RecursionError:  # the endpoint answers 502 upstream_response_too_deep then
        assert depth > 900
        return
    assert b"jane.doe" not in out
