"""The gateway's logs: one JSON object per line on stderr, access lines included.

Process logs (start-up, Redis state changes, uvicorn's own) and access lines share one format, so a
log pipeline parses one thing. Access lines carry what an operator needs to follow a request (id,
tenant pseudonym, model, status, latency, tokens) and never a prompt, a completion or a key.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from time import perf_counter
from typing import Any, TextIO

import orjson

from llm_gateway.telemetry.exchange import Exchange

__all__ = ["ACCESS_LOGGER", "AccessLog", "JsonFormatter", "access_record", "configure_logging", "timestamp"]

ACCESS_LOGGER = "llm_gateway.access"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...}``; an access line's fields come from ``record.access``.

    Exceptions are reduced to their type and message: a traceback is multi-line and can quote data.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        access = getattr(record, "access", None)
        if access is not None:
            line.update(access)
        if record.exc_info and record.exc_info[1] is not None:
            line["exception"] = type(record.exc_info[1]).__name__
        return orjson.dumps(line).decode()


#: The last second formatted, and its text: one reference, swapped whole (threads log too).
_last_second: tuple[int, str] = (-1, "")


def timestamp(created: float) -> str:
    """``created`` (Unix seconds) in ISO 8601, UTC, to the millisecond: ``2026-11-30T17:30:42.123+00:00``.

    The text of the second is kept for the next call: most lines under load fall in the same second.
    """
    global _last_second
    fraction, whole = math.modf(created)
    micros = round(fraction * 1e6)  # as datetime.fromtimestamp rounds, so the texts agree
    second = int(whole) + micros // 1_000_000
    cached, text = _last_second
    if second != cached:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = (second, text)
    return f"{text}.{micros % 1_000_000 // 1000:03d}+00:00"


class AccessLog:
    """Access lines, in :class:`JsonFormatter`'s format, written to ``stream`` once per event-loop turn.

    An access line through :mod:`logging` costs about 35 µs (a record, the caller's frame, locks, a
    flush per line); here it is one ``orjson.dumps`` on the request path, and the lines of one turn of
    the loop go out together in one write after that turn. Use it from the event loop's thread.
    A stream that fails (closed, broken pipe) loses those lines, as a logging handler would.
    """

    __slots__ = ("_pending", "_stream")

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending: list[bytes] = []

    def write(self, record: dict[str, Any]) -> None:
        """Queue one access line with ``record``'s fields (see :func:`access_record`)."""
        line = {"ts": timestamp(time.time()), "level": "info", "logger": ACCESS_LOGGER, "message": "access"}
        line.update(record)
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(orjson.dumps(line))

    def flush(self) -> None:
        """Write what is queued."""
        if not self._pending:
            return
        lines = b"\n".join(self._pending) + b"\n"
        self._pending.clear()
        try:
            self._stream.write(lines.decode())
            self._stream.flush()
        except (OSError, ValueError):
            pass


def configure_logging(level: str) -> None:
    """Send every logger's records, as JSON lines, to stderr at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def access_record(exchange: Exchange, tenant: str | None) -> dict[str, Any]:
    """The fields of ``exchange``'s access line; ``tenant`` is already the pseudonym to show."""
    record: dict[str, Any] = {
        "request_id": exchange.request_id,
        "method": exchange.method,
        "route": exchange.route,
        "status": exchange.status or 499,
        "latency_ms": round((perf_counter() - exchange.start) * 1000, 3),
        "tenant": tenant,
        "model": exchange.model,
    }
    if exchange.usage is not None:
        record["input_tokens"] = exchange.usage.input_tokens
        record["output_tokens"] = exchange.usage.output_tokens
    if exchange.stream_outcome is not None:
        record["stream_outcome"] = exchange.stream_outcome
    if exchange.upstream_request_id is not None:
        record["upstream_request_id"] = exchange.upstream_request_id
    if exchange.attempts:
        record["attempts"] = exchange.attempts
        record["deployment"] = exchange.deployment
    if exchange.refund is not None:
        record["quota_refund"] = exchange.refund
    if exchange.error is not None:
        record["error"] = exchange.error.code
    return record
