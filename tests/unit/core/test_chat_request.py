from __future__ import annotations

import json

import orjson
import pytest

from llm_gateway.core.chat_request import parse_chat_request
from llm_gateway.errors import InvalidRequest

DEPTH = 64
ELEMENTS = 1000


def test_reads_model_and_stream_and_keeps_the_payload() -> None:
    request = parse_chat_request(
        b'{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"x-future":1}',
        DEPTH,
        ELEMENTS,
    )
    assert (request.model, request.stream) == ("m", True)
    assert request.payload["x-future"] == 1


@pytest.mark.parametrize("stream", [b"", b',"stream":false', b',"stream":null'])
def test_stream_defaults_to_false(stream: bytes) -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"x"}]' + stream + b"}"
    assert parse_chat_request(body, DEPTH, ELEMENTS).stream is False


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
        parse_chat_request(body, DEPTH, ELEMENTS)
    assert caught.value.code == code
    assert caught.value.status == 400


def test_a_body_at_the_depth_limit_is_accepted() -> None:
    body = b'{"model":"m","messages":[{}],"tools":' + b"[" * 63 + b"]" * 63 + b"}"
    assert parse_chat_request(body, DEPTH, ELEMENTS).payload["tools"]


@pytest.mark.parametrize("number", [b"18446744073709551616", b"-123456789012345678901234567890", b"NaN"])
def test_a_rewritten_request_keeps_numbers_orjson_cannot_hold(number: bytes) -> None:
    request = parse_chat_request(
        b'{"model":"m","messages":[{"role":"user","content":"x"}],"seed":' + number + b"}", DEPTH, ELEMENTS
    )
    request.payload["messages"][0]["content"] = "y"
    written = request.dumps(request.payload)
    assert written.endswith(b'"seed":' + number + b"}")


@pytest.mark.parametrize(
    "body", ['{"model":"m","messages":[{}]}'.encode("utf-16"), b'{"model":"m","messages":[{}],"t":1e400}']
)
def test_what_cannot_be_written_back_as_it_came_is_not_json_here(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(body, DEPTH, ELEMENTS)
    assert caught.value.code == "invalid_json"


def test_a_body_of_many_small_elements_is_refused_before_it_is_parsed() -> None:
    many = b'{"model":"m","messages":[{}],"x":[' + b"[]," * ELEMENTS + b"[]]}"
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(many, DEPTH, ELEMENTS)
    assert caught.value.code == "json_too_many_elements"
    # Commas and brackets inside strings are text, not elements.
    prose = b'{"model":"m","messages":[{"content":"' + b"a, [b], {c}, " * ELEMENTS + b'"}]}'
    assert parse_chat_request(prose, DEPTH, ELEMENTS).elements < 10


@pytest.mark.parametrize("model", ["gpt\ud800x", "a" * 257, "tab\there", ""])
def test_a_model_name_that_cannot_be_a_label_or_log_field_is_refused(model: str) -> None:
    body = orjson.dumps({"model": "m", "messages": [{}]}).replace(b'"m"', json.dumps(model).encode())
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(body, DEPTH, ELEMENTS)
    assert caught.value.code == "invalid_model"
