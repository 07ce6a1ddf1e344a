"""Model text is redacted wherever it lives: content, refusal, log probabilities, tool-call arguments
(whole and streamed), tool results; nothing else changes, and an unchanged event keeps its bytes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core import json_codec
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

REDACTOR = Redactor(Replacer("mask"))
ENVELOPE = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def event(choice: dict[str, Any]) -> SSEEvent:
    return SSEEvent.of_data(orjson.dumps({**ENVELOPE, "choices": [{"index": 0, **choice}]}))


def choices(events: list[SSEEvent]) -> list[dict[str, Any]]:
    return [orjson.loads(e.data)["choices"][0] for e in events if e.data not in (None, b"[DONE]")]  # type: ignore[arg-type]


def logprob(token: str) -> dict[str, Any]:
    return {
        "token": token,
        "bytes": list(token.encode()),
        "logprob": -0.1,
        "top_logprobs": [{"token": token, "bytes": list(token.encode()), "logprob": -0.1}],
    }


DELTAS = ["mail ", "jane", ".doe", "@example", ".com", " ok"]  # the example


def test_streamed_logprobs_of_a_redacted_address_are_dropped_and_the_rest_kept() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    events = [event({"delta": {"content": d}, "logprobs": {"content": [logprob(d)]}}) for d in DELTAS]
    out = choices(sse.process([*events, event({"delta": {}, "finish_reason": "stop"})]))
    text = "".join(c["delta"].get("content") or "" for c in out)
    tokens = [entry["token"] for c in out for entry in (c.get("logprobs") or {}).get("content") or []]
    assert text == "mail j***e@example.com ok"
    assert tokens == ["mail ", " ok"]
    assert "jane" not in orjson.dumps(out).decode()


def test_whole_response_logprobs_of_a_redacted_address_are_dropped() -> None:
    body = orjson.dumps(
        {
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(DELTAS)},
                    "logprobs": {"content": [logprob(d) for d in DELTAS]},
                }
            ]
        }
    )
    out = orjson.loads(redact_response(body, orjson.loads(body), REDACTOR, Counter(), CHAT))
    assert out["choices"][0]["message"]["content"] == "mail j***e@example.com ok"
    assert [entry["token"] for entry in out["choices"][0]["logprobs"]["content"]] == ["mail ", " ok"]


def tool_call_events(pieces: list[str]) -> list[SSEEvent]:
    first = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "send", "arguments": ""}}
    events = [event({"delta": {"role": "assistant", "tool_calls": [first]}})]
    events += [event({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}}) for p in pieces]
    return [*events, event({"delta": {}, "finish_reason": "tool_calls"}), SSEEvent.of_data(b"[DONE]")]


def arguments(out: list[SSEEvent]) -> str:
    return "".join(
        call["function"].get("arguments", "")
        for c in choices(out)
        for call in c["delta"].get("tool_calls") or []
        if call.get("index") == 0
    )


def test_streamed_tool_call_arguments_are_redacted_and_still_parse() -> None:
    args = '{"to": "jane.doe@example.com", "card": 4111111111111111, "note": "call +14155552671"}'
    pieces = [args[i : i + 5] for i in range(0, len(args), 5)]
    sse = SSERedactor(REDACTOR, CHAT)
    out = sse.process(tool_call_events(pieces))
    assert orjson.loads(arguments(out)) == {
        "to": "j***e@example.com",
        "card": "CC_MASKED_LAST4_1111",  # a bare number is quoted: the arguments must still parse
        "note": "call PHONE_MASKED_LAST4_2671",
    }
    assert sse.found == {Entity.EMAIL: 1, Entity.CREDIT_CARD: 1, Entity.PHONE: 1}


def test_a_finish_chunk_with_an_empty_delta_comes_out_byte_for_byte() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    events = tool_call_events(['{"city": ', '"Paris"}'])
    out = sse.process(events)
    assert out[-2].raw == events[-2].raw  # "delta": {} stays {}, not {"content": ""}
    assert [e.raw for e in out] == [e.raw for e in events]


def test_refusals_are_redacted_like_content() -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    out = sse.process(
        [
            event({"delta": {"refusal": "I won't mail jane.doe@exa"}}),
            event({"delta": {"refusal": "mple.com"}, "finish_reason": "stop"}),
        ]
    )
    assert "".join(c["delta"]["refusal"] for c in choices(out)) == "I won't mail j***e@example.com"


def test_request_tool_results_and_history_arguments_are_redacted() -> None:
    payload = {
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"ip": "10.1.2.3", "n": 4111111111111111}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "1", "content": "found jane.doe@example.com"},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "text", "text": "ssn 123-45-6789"},
                ],
            },
        ]
    }
    assert redact_request(payload, REDACTOR, Counter(), CHAT)
    messages = payload["messages"]
    assert orjson.loads(messages[0]["tool_calls"][0]["function"]["arguments"]) == {
        "ip": "IP_MASKED",
        "n": "CC_MASKED_LAST4_1111",
    }  # type: ignore[index]
    assert messages[1]["content"] == "found j***e@example.com"
    assert messages[2]["content"][0] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAAA"},
    }  # type: ignore[index]
    assert messages[2]["content"][1]["text"] == "ssn SSN_MASKED_LAST4_6789"  # type: ignore[index]


WORDS = st.lists(st.text("abcdefgh ,.", min_size=1, max_size=9), min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(words=WORDS, framing=st.sampled_from(["plain", "id", "crlf"]))
def test_without_entities_only_text_moves_and_unchanged_events_keep_their_bytes(
    words: list[str], framing: str
) -> None:
    events = [
        *[event({"delta": {"content": w}, "finish_reason": None}) for w in words],
        event({"delta": {}, "finish_reason": "stop"}),
    ]
    wire = b"".join(e.raw for e in events) + b"data: [DONE]\n\n"
    if framing == "id":
        wire = b"".join(b"id: %d\n" % n + e.raw for n, e in enumerate(events)) + b"data: [DONE]\n\n"
    elif framing == "crlf":
        wire = wire.replace(b"\n", b"\r\n")
    upstream = SSEDecoder().decode(wire)
    out = SSERedactor(REDACTOR, CHAT).process(upstream)
    assert len(out) == len(upstream)
    for sent, came in zip(out, upstream, strict=True):
        if sent.data == came.data:
            assert sent.raw == came.raw  # untouched: the exact bytes
        else:  # only the text moved (held back to the next event): every other field the same
            a, b = orjson.loads(sent.data), orjson.loads(came.data)  # type: ignore[arg-type]
            a["choices"][0]["delta"].pop("content"), b["choices"][0]["delta"].pop("content", None)
            assert a == b
            assert [line for line in sent.lines if not line.startswith(b"data")] == [
                line for line in came.lines if not line.startswith(b"data")
            ]
    assert "".join(c["delta"].get("content", "") for c in choices(out)) == "".join(words)


# Found by an adversarial run against the real gateway; each was a leak, a crash or a broken stream.

CONTEXT_SPLITS = [
    ["My phone is 555", "123", "4567", ". Call me."],
    ["Her SSN is 123", "45", "6789", " ok"],
    ["aws_secret_access_key=wJalrXUtnFEMI/K7MDE", "NG/bPxRfiCYEXAMPLEKEY done"],
]


@pytest.mark.parametrize("pieces", CONTEXT_SPLITS)
def test_values_found_by_a_context_word_are_redacted_however_the_stream_is_cut(pieces: list[str]) -> None:
    sse = SSERedactor(REDACTOR, CHAT)
    events = [event({"delta": {"content": p}}) for p in pieces] + [
        event({"delta": {}, "finish_reason": "stop"})
    ]
    text = "".join(c["delta"].get("content") or "" for c in choices(sse.process(events)))
    assert text == REDACTOR.redact("".join(pieces)) != "".join(pieces)


def test_a_long_token_with_logprobs_on_every_chunk_is_swallowed_without_failing() -> None:
    token = "sk-" + "Ab3_" * 70
    pieces = [token[i : i + 4] for i in range(0, len(token), 4)] + [" after"]
    sse = SSERedactor(REDACTOR, CHAT)
    out = sse.process(
        [event({"delta": {"content": p}, "logprobs": {"content": [logprob(p)]}}) for p in pieces]
    )
    out += sse.finish()
    assert "".join(c["delta"].get("content") or "" for c in choices(out)) == "SECRET_MASKED after"
    assert "Ab3_" not in orjson.dumps(choices(out)).decode()


@pytest.mark.parametrize("index", [[1], {"a": 1}, None])
def test_an_index_that_is_not_a_number_does_not_break_the_stream(index: object) -> None:
    raw = orjson.dumps({**ENVELOPE, "choices": [{"index": index, "delta": {"content": "mail jane.doe@exa"}}]})
    call = {"index": index, "function": {"arguments": '{"a": "jane.doe@example.com"}'}}
    raw2 = orjson.dumps({**ENVELOPE, "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
    sse = SSERedactor(REDACTOR, CHAT)
    out = sse.process([SSEEvent.of_data(raw), SSEEvent.of_data(raw2), SSEEvent.of_data(b"[DONE]")])
    assert "jane.doe@example.com" not in b"".join(e.raw for e in out).decode()
    assert out[-1].data == b"[DONE]"


def test_many_tool_calls_held_at_the_finish_are_flushed_in_one_pass() -> None:
    calls = [{"index": i, "function": {"arguments": '{"a": "jane'}} for i in range(3000)]
    sse = SSERedactor(REDACTOR, CHAT)
    out = choices(
        sse.process([event({"delta": {"tool_calls": calls}}), event({"delta": {}, "finish_reason": "stop"})])
    )
    flushed = out[-1]["delta"]["tool_calls"]
    assert [call["index"] for call in flushed] == list(range(3000))
    assert all(call["function"]["arguments"] == "jane" for call in flushed)


def test_json_that_only_the_standard_library_reads_is_still_redacted_across_events() -> None:
    first = (
        b'{"choices":[{"index":0,"delta":{"content":"Contact: jane.doe@exa"},"finish_reason":null}],"x":NaN}'
    )
    sse = SSERedactor(REDACTOR, CHAT)
    out = sse.process(
        [SSEEvent.of_data(first), event({"delta": {"content": "mple.com ok"}, "finish_reason": "stop"})]
    )
    assert b"jane.doe" not in b"".join(e.raw for e in out)


def test_escaped_characters_in_tool_arguments_never_make_them_invalid_json() -> None:
    for args in [
        '{"to": "zo\\u00eb.dupont@example.com", "cc": "\\u00e9lise@example.com"}',
        '{"a":["-----BEGIN PRIVATE KEY-----"],"b":"-----END PRIVATE KEY-----"}',
    ]:
        sse = SSERedactor(REDACTOR, CHAT)
        pieces = [args[i : i + 3] for i in range(0, len(args), 3)]
        out = sse.process(tool_call_events(pieces))
        orjson.loads(arguments(out))  # still parses


def test_content_sent_as_lists_of_text_parts_is_redacted_across_events_and_keeps_its_shape() -> None:
    """Some OpenAI-compatible servers stream ``delta.content`` as content parts."""
    sse = SSERedactor(REDACTOR, CHAT)
    parts = [[{"type": "text", "text": d}] for d in DELTAS[:-1]]
    out = choices(sse.process([event({"delta": {"content": p}}) for p in parts]))
    out += choices(sse.process([event({"delta": {}, "finish_reason": "stop"})]))
    contents = [c["delta"]["content"] for c in out if "content" in c["delta"]]
    assert all(isinstance(content, list) for content in contents)
    assert "".join(part["text"] for content in contents for part in content) == "mail j***e@example.com"


def test_content_parts_that_are_not_text_pass_untouched_in_a_stream() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,jane.doe@example.com"}}
    raw = event({"delta": {"content": [image]}})
    assert SSERedactor(REDACTOR, CHAT).process([raw])[0].raw == raw.raw


@pytest.mark.parametrize(
    "number", ["18446744073709551616", "123456789012345678901234567890", "-9223372036854775809"]
)
def test_integers_beyond_64_bits_stay_exact_when_an_event_is_rewritten(number: str) -> None:
    data = (
        b'{"choices":[{"index":0,"delta":{"content":"mail jane.doe@example.com ok"},"finish_reason":"stop"}],'
        b'"n":%s}'
    )
    out = SSERedactor(REDACTOR, CHAT).process([SSEEvent.of_data(data % number.encode())])
    assert b'"n":' + number.encode() + b"}" in out[0].raw
    assert b"jane.doe" not in out[0].raw


def test_integers_beyond_64_bits_stay_exact_in_a_rewritten_response() -> None:
    body = (
        b'{"choices":[{"index":0,"message":{"role":"assistant","content":"jane.doe@example.com"}}],'
        b'"n":18446744073709551616}'
    )
    payload, dumps = json_codec.loads(body)
    out = redact_response(body, payload, REDACTOR, Counter(), CHAT, dumps=dumps)
    assert out.endswith(b'"n":18446744073709551616}') and b"jane.doe" not in out


def test_tool_call_arguments_given_as_an_object_have_their_strings_redacted() -> None:
    """OpenAI sends arguments as JSON text; some compatible servers (Ollama) take the object."""
    arguments = {"to": ["jane.doe@example.com"], "meta": {"ip": "10.1.2.3", "n": 3}, "ok": True}
    payload = {
        "model": "m",
        "messages": [
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": arguments}}]}
        ],
    }
    assert redact_request(payload, REDACTOR, Counter(), CHAT)
    assert arguments == {"to": ["j***e@example.com"], "meta": {"ip": "IP_MASKED", "n": 3}, "ok": True}
