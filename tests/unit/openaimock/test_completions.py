from __future__ import annotations

import orjson

from openaimock.completions import DEFAULT_REPLY, completion, reply_text, stream_events, tokenize


def test_tokens_concatenate_back_to_the_text() -> None:
    for text in (DEFAULT_REPLY, "  a  b\n c ", "jane.doe@example.com", "x"):
        assert "".join(tokenize(text)) == text
    assert len(tokenize(DEFAULT_REPLY)) == 20


def test_echo_returns_the_last_user_message_including_text_parts() -> None:
    payload = {
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ignored"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a "},
                    {"type": "image_url"},
                    {"type": "text", "text": "b"},
                ],
            },
        ]
    }
    assert reply_text(payload, echo=True) == "a b"
    assert reply_text(payload, echo=False) == DEFAULT_REPLY


def test_stream_has_role_words_finish_usage_and_done() -> None:
    payload = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream_options": {"include_usage": True},
    }
    events = stream_events(payload, "one two", "id-1")
    assert [e.endswith(b"\n\n") for e in events] == [True] * 6
    chunks = [orjson.loads(e[6:]) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:3]) == "one two"
    assert chunks[3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[4]["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert chunks[4]["choices"] == []
    assert [c["usage"] for c in chunks[:4]] == [None] * 4  # as OpenAI sends them
    assert events[-1] == b"data: [DONE]\n\n"


def test_stream_without_usage_asked_has_no_usage_field() -> None:
    events = stream_events({"model": "m", "messages": []}, "one", "id-1")
    assert all("usage" not in orjson.loads(e[6:]) for e in events[:-1])


def test_non_stream_completion_has_usage() -> None:
    body = orjson.loads(
        completion({"model": "m", "messages": [{"role": "user", "content": "a b"}]}, "x y z", "id")
    )
    assert body["choices"][0]["message"]["content"] == "x y z"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
