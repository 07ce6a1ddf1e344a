from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.usage import Usage
from llm_gateway.errors import UpstreamTimeout
from llm_gateway.telemetry.exchange import Exchange
from llm_gateway.telemetry.logs import ACCESS_LOGGER, AccessLog, JsonFormatter, access_record, timestamp


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


@settings(max_examples=500)
@given(created=st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_timestamps_read_as_datetime_writes_them(created: float) -> None:
    assert timestamp(created) == datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


@pytest.mark.parametrize("created", [1764500000.9999996, 1764500000.0005, 1764500000.9995, 0.0])
def test_timestamps_at_the_edges_of_a_second(created: float) -> None:
    assert timestamp(created) == datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def test_access_lines_go_out_together_after_the_loop_turn_in_the_log_format() -> None:
    stream = io.StringIO()
    access_log = AccessLog(stream)

    async def serve() -> tuple[str, str]:
        for status in (200, 429, 502):
            access_log.write({"request_id": f"r{status}", "status": status})
        during = stream.getvalue()
        await asyncio.sleep(0)
        return during, stream.getvalue()

    during, after = asyncio.run(serve())
    assert during == ""  # nothing written on the request path
    lines = [orjson.loads(line) for line in after.splitlines()]
    assert [line["status"] for line in lines] == [200, 429, 502]
    assert list(lines[0]) == ["ts", "level", "logger", "message", "request_id", "status"]
    assert (lines[0]["level"], lines[0]["logger"], lines[0]["message"]) == ("info", ACCESS_LOGGER, "access")


def test_a_closed_stream_loses_access_lines_without_an_error_in_the_loop() -> None:
    stream = io.StringIO()
    access_log = AccessLog(stream)
    errors: list[dict[str, object]] = []

    async def serve() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        access_log.write({"status": 200})
        stream.close()
        await asyncio.sleep(0)

    asyncio.run(serve())
    assert errors == []
