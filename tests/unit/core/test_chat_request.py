from __future__ import annotations

import pytest

from llm_gateway.core.chat_request import parse_chat_request
from llm_gateway.errors import InvalidRequest

DEPTH = 64


def test_reads_model_and_stream_and_keeps_the_payload() -> None:
    request = parse_chat_request(
        b'{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"x-future":1}', DEPTH
    )
    assert (request.model, request.stream) == ("m", True)
    assert request.payload["x-future"] == 1


@pytest.mark.parametrize("stream", [b"", b',"stream":false', b',"stream":null'])
def test_stream_defaults_to_false(stream: bytes) -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"x"}]' + stream + b"}"
    assert parse_chat_request(body, DEPTH).stream is False


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
        parse_chat_request(body, DEPTH)
    assert caught.value.code == code
    assert caught.value.status == 400


def test_a_body_at_the_depth_limit_is_accepted() -> None:
    body = b'{"model":"m","messages":[{}],"tools":' + b"[" * 63 + b"]" * 63 + b"}"
    assert parse_chat_request(body, DEPTH).payload["tools"]


@pytest.mark.parametrize("number", [b"18446744073709551616", b"-123456789012345678901234567890", b"NaN"])
def test_a_rewritten_request_keeps_numbers_orjson_cannot_hold(number: bytes) -> None:
    request = parse_chat_request(
        b'{"model":"m","messages":[{"role":"user","content":"x"}],"seed":' + number + b"}", DEPTH
    )
    request.payload["messages"][0]["content"] = "y"
    written = request.dumps(request.payload)
    assert written.endswith(b'"seed":' + number + b"}")


@pytest.mark.parametrize(
    "body", ['{"model":"m","messages":[{}]}'.encode("utf-16"), b'{"model":"m","messages":[{}],"t":1e400}']
)
def test_what_cannot_be_written_back_as_it_came_is_not_json_here(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(body, DEPTH)
    assert caught.value.code == "invalid_json"
