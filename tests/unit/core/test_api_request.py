from __future__ import annotations

import json

import orjson
import pytest

from llm_gateway.core.api_request import parse_request
from llm_gateway.core.apis import CHAT_COMPLETIONS, COMPLETIONS, EMBEDDINGS, RESPONSES, WireAPI
from llm_gateway.errors import InvalidRequest

DEPTH = 64
ELEMENTS = 1000


def test_reads_model_and_stream_and_keeps_the_payload() -> None:
    request = parse_request(
        CHAT_COMPLETIONS,
        b'{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"x-future":1}',
        DEPTH,
        ELEMENTS,
    )
    assert (request.model, request.stream) == ("m", True)
    assert request.payload["x-future"] == 1


@pytest.mark.parametrize("stream", [b"", b',"stream":false', b',"stream":null'])
def test_stream_defaults_to_false(stream: bytes) -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"x"}]' + stream + b"}"
    assert parse_request(CHAT_COMPLETIONS, body, DEPTH, ELEMENTS).stream is False


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"nope", "invalid_json"),
        (b'"string"', "invalid_json"),
        (b'{"messages":[{}]}', "invalid_model"),
        (b'{"model":"","messages":[{}]}', "invalid_model"),
        (b'{"model":"m"}', "invalid_messages"),
        (b'{"model":"m","messages":{}}', "invalid_messages"),
        (b'{"model":"m","messages":[{}],"stream":1}', "invalid_stream"),
        (b'{"model":"m","messages":[{}],"tools":' + b"[" * 64 + b"]" * 64 + b"}", "json_too_deep"),
    ],
)
def test_rejects_what_the_gateway_cannot_act_on(body: bytes, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(CHAT_COMPLETIONS, body, DEPTH, ELEMENTS)
    assert caught.value.code == code
    assert caught.value.status == 400


def test_a_body_at_the_depth_limit_is_accepted() -> None:
    body = b'{"model":"m","messages":[{}],"tools":' + b"[" * 63 + b"]" * 63 + b"}"
    assert parse_request(CHAT_COMPLETIONS, body, DEPTH, ELEMENTS).payload["tools"]


@pytest.mark.parametrize("number", [b"18446744073709551616", b"-123456789012345678901234567890", b"NaN"])
def test_a_rewritten_request_keeps_numbers_orjson_cannot_hold(number: bytes) -> None:
    request = parse_request(
        CHAT_COMPLETIONS,
        b'{"model":"m","messages":[{"role":"user","content":"x"}],"seed":' + number + b"}",
        DEPTH,
        ELEMENTS,
    )
    request.payload["messages"][0]["content"] = "y"
    written = request.dumps(request.payload)
    assert written.endswith(b'"seed":' + number + b"}")


@pytest.mark.parametrize(
    "body", ['{"model":"m","messages":[{}]}'.encode("utf-16"), b'{"model":"m","messages":[{}],"t":1e400}']
)
def test_what_cannot_be_written_back_as_it_came_is_not_json_here(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(CHAT_COMPLETIONS, body, DEPTH, ELEMENTS)
    assert caught.value.code == "invalid_json"


def test_a_body_of_many_small_elements_is_refused_before_it_is_parsed() -> None:
    many = b'{"model":"m","messages":[{}],"x":[' + b"[]," * ELEMENTS + b"[]]}"
    with pytest.raises(InvalidRequest) as caught:
        parse_request(CHAT_COMPLETIONS, many, DEPTH, ELEMENTS)
    assert caught.value.code == "json_too_many_elements"
    # Commas and brackets inside strings are text, not elements.
    prose = b'{"model":"m","messages":[{"content":"' + b"a, [b], {c}, " * ELEMENTS + b'"}]}'
    assert parse_request(CHAT_COMPLETIONS, prose, DEPTH, ELEMENTS).elements < 10


@pytest.mark.parametrize("model", ["gpt\ud800x", "a" * 257, "tab\there", ""])
def test_a_model_name_that_cannot_be_a_label_or_log_field_is_refused(model: str) -> None:
    body = orjson.dumps({"model": "m", "messages": [{}]}).replace(b'"m"', json.dumps(model).encode())
    with pytest.raises(InvalidRequest) as caught:
        parse_request(CHAT_COMPLETIONS, body, DEPTH, ELEMENTS)
    assert caught.value.code == "invalid_model"


# What each API's input rule accepts and refuses: (api, the input field's JSON, accepted).
INPUTS = [
    (CHAT_COMPLETIONS, b'[{"role":"user","content":"x"}]', True),
    (CHAT_COMPLETIONS, b"[]", False),
    (CHAT_COMPLETIONS, b'"hi"', False),
    (COMPLETIONS, b'"Say this is a test"', True),
    (COMPLETIONS, b'""', True),
    (COMPLETIONS, b'["one", "two"]', True),
    (COMPLETIONS, b"[1, 2, 3]", True),
    (COMPLETIONS, b"[[1, 2], [3]]", True),
    (COMPLETIONS, b"[]", False),
    (COMPLETIONS, b"null", False),
    (COMPLETIONS, b"3", False),
    (COMPLETIONS, b'{"text": "x"}', False),
    (EMBEDDINGS, b'"The food was delicious"', True),
    (EMBEDDINGS, b'["a", "b"]', True),
    (EMBEDDINGS, b"[[1, 2], [3]]", True),
    (EMBEDDINGS, b'""', False),
    (EMBEDDINGS, b"[]", False),
    (EMBEDDINGS, b"null", False),
    (EMBEDDINGS, b"true", False),
    (RESPONSES, b'"Tell me a story"', True),
    (RESPONSES, b'[{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]', True),
    (RESPONSES, b"null", True),  # continuing a stored conversation (previous_response_id)
    (RESPONSES, b"3", False),
    (RESPONSES, b'{"role": "user"}', False),
]


@pytest.mark.parametrize(("api", "value", "accepted"), INPUTS)
def test_each_api_checks_its_own_input_field(api: WireAPI, value: bytes, accepted: bool) -> None:
    field = api.input.field.encode()
    body = b'{"model":"m","' + field + b'":' + value + b"}"
    if accepted:
        assert parse_request(api, body, DEPTH, ELEMENTS).payload[api.input.field] == orjson.loads(value)
        return
    with pytest.raises(InvalidRequest) as caught:
        parse_request(api, body, DEPTH, ELEMENTS)
    assert caught.value.code == f"invalid_{api.input.field}"
    assert caught.value.message == api.input.message()


def test_an_api_without_streams_does_not_read_the_stream_field() -> None:
    """Embeddings have no stream: the field is the upstream's to judge, and the answer is JSON."""
    request = parse_request(EMBEDDINGS, b'{"model":"m","input":"x","stream":"yes"}', DEPTH, ELEMENTS)
    assert request.stream is False
    assert request.payload["stream"] == "yes"


def test_messages_say_whether_the_field_is_required() -> None:
    assert CHAT_COMPLETIONS.input.message() == "'messages' is required and must be a non-empty array"
    assert RESPONSES.input.message().startswith("'input' must be a string or an array")
