"""The gateway's logs: one JSON object per line on stderr, access lines included.

Process logs (start-up, Redis state changes, uvicorn's own) and access lines share one format, so a
log pipeline parses one thing. Access lines carry what an operator needs to follow a request (id,
tenant pseudonym, model, status, latency, tokens) and never a prompt, a completion or a key.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

import orjson

from llm_gateway.telemetry.exchange import Exchange

__all__ = ["ACCESS_LOGGER", "JsonFormatter", "access_record", "configure_logging"]

ACCESS_LOGGER = "llm_gateway.access"


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...}``; an access line's fields come from ``record.access``.

    Exceptions are reduced to their type and message: a traceback is multi-line and can quote data.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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
    if exchange.refund is not None:
        record["quota_refund"] = exchange.refund
    if exchange.error is not None:
        record["error"] = exchange.error.code
    return record
