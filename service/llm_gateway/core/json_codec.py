"""Reading JSON so that writing it back changes nothing but what the gateway changed (pure).

orjson is fast, but it refuses some JSON that clients and upstreams accept (``NaN``, lone
surrogates) and silently reads integers beyond 64 bits as floats, so a payload it read and wrote
again could differ in its numbers. :func:`loads` uses orjson when that cannot happen and the
standard library otherwise, and hands back the matching writer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["Dumps", "loads"]

#: Writes a parsed payload back as compact UTF-8 JSON.
Dumps = Callable[[Any], bytes]

#: A number orjson might read as a float: 19 digits or more in a row (2**63 has 19). Digits inside
#: strings match too; they only cost the slower, exact path.
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def loads(data: bytes) -> tuple[Any, Dumps]:
    """``data`` parsed, and the writer that keeps it exact. Raises ``ValueError`` when it is not UTF-8
    JSON, holds a number beyond a float's range, or nests beyond what the standard library parses.
    ``NaN`` and ``Infinity`` are read (clients write them) and written back as they came."""
    if _LONG_NUMBER.search(data) is None:
        try:
            return orjson.loads(data), _orjson_dumps
        except orjson.JSONDecodeError:
            pass
    try:
        # UTF-8 only, as orjson (the standard library would guess UTF-16 and -32 too).
        return json.loads(data.decode(), parse_float=_finite), _std_dumps
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _finite(literal: str) -> float:
    """A float literal's value; one too large for a float (``1e400``) would be written back as
    ``Infinity``, so it is refused as orjson refuses it."""
    value = float(literal)
    if math.isinf(value):
        raise ValueError(f"number {literal[:40]} is out of range")
    return value


def _orjson_dumps(payload: Any) -> bytes:
    """orjson's writer; what it will not write (nesting beyond 255 levels, which it reads up to
    1024) the standard library writes. Beyond what that can (``RecursionError``), the caller
    decides."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return _std_dumps(payload)


def _std_dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
