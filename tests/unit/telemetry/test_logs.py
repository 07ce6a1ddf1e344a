from __future__ import annotations

import logging

import orjson

from llm_gateway.core.usage import Usage
from llm_gateway.errors import UpstreamTimeout
from llm_gateway.telemetry.exchange import Exchange
from llm_gateway.telemetry.logs import JsonFormatter, access_record


async def _send(_: object) -> None:
    return None


def test_an_access_record_carries_what_operators_need_and_nothing_else() -> None:
    exchange = Exchange("/v1/chat/completions", "POST", _send)
    exchange.status = 504
    exchange.model = "gpt-4o"
    exchange.tenant = "sk-raw-key"
    exchange.usage = Usage(3, 4)
    exchange.error = UpstreamTimeout("slow")
    record = access_record(exchange, "3f9a0c1d2e4b")
    assert record.keys() == {
        "request_id", "method", "route", "status", "latency_ms", "tenant", "model",
        "input_tokens", "output_tokens", "error",
    }  # fmt: skip
    assert record["tenant"] == "3f9a0c1d2e4b" and "sk-raw-key" not in str(record)
    assert (record["status"], record["error"], record["input_tokens"]) == (504, "upstream_timeout", 3)


def test_a_request_whose_client_left_is_499() -> None:
    assert access_record(Exchange("/v1/models", "GET", _send), None)["status"] == 499


def test_lines_are_json_and_exceptions_are_reduced_to_their_type() -> None:
    try:
        raise ValueError("contains user data")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("here",), exc_info=True)
        import sys

        record.exc_info = sys.exc_info()
    line = orjson.loads(JsonFormatter().format(record))
    assert line["message"] == "failed here" and line["level"] == "error"
    assert line["exception"] == "ValueError"
    assert "user data" not in JsonFormatter().format(record)
