"""Scripted responses: exact bytes, with exact write boundaries, for replaying upstream behaviour.

A script is JSON::

    {"status": 200, "content_type": "text/event-stream",
     "headers": {"retry-after": "7"},               # more response headers (optional)
     "writes": ["data: {...}\\n\\n", ...],          # text, written as UTF-8, or
     "writes_b64": ["ZGF0YTog...", ...],            # raw bytes, base64 (for bytes that are not UTF-8)
     "write_delay_ms": 0}                           # pause after each write (0: back to back)

Each element of ``writes`` is one ``write()`` on the connection, so a test controls where the
upstream's bytes are cut. Scripts come from ``SCRIPT_DIR/<name>.json`` or from
``PUT /_mock/scripts/<name>``; a request picks one with the ``script=<name>`` directive.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Script", "ScriptBook"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True, slots=True)
class Script:
    """One scripted response."""

    status: int
    content_type: str
    writes: tuple[bytes, ...]
    write_delay_ms: int
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_json(cls, raw: bytes) -> Script:
        """Parse a script; raises ``ValueError`` saying what is wrong."""
        spec: Any = orjson.loads(raw)
        if not isinstance(spec, dict):
            raise ValueError("a script is a JSON object")
        if "writes" in spec:
            writes = tuple(_text(item).encode() for item in _list(spec["writes"]))
        elif "writes_b64" in spec:
            writes = tuple(base64.b64decode(_text(item), validate=True) for item in _list(spec["writes_b64"]))
        else:
            raise ValueError("a script needs writes or writes_b64")
        status, delay = spec.get("status", 200), spec.get("write_delay_ms", 0)
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status")
        if not isinstance(delay, int) or delay < 0:
            raise ValueError("write_delay_ms must be a non-negative integer")
        content_type = _text(spec.get("content_type", "text/event-stream"))
        headers = spec.get("headers", {})
        if not isinstance(headers, dict):
            raise ValueError("headers must be an object of strings")
        pairs = tuple((_text(name), _text(value)) for name, value in headers.items())
        return cls(status, content_type, writes, delay, pairs)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("writes must be a list")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


class ScriptBook:
    """Scripts by name: those registered at run time, else ``<directory>/<name>.json``."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        self._registered: dict[str, Script] = {}

    def register(self, name: str, script: Script) -> None:
        self._registered[_checked(name)] = script

    def get(self, name: str) -> Script:
        """The script ``name``; raises ``ValueError`` when there is none."""
        script = self._registered.get(_checked(name))
        if script is not None:
            return script
        if self._directory is not None:
            path = self._directory / f"{name}.json"
            if path.is_file():
                return Script.from_json(path.read_bytes())
        raise ValueError(f"no script named {name!r}")

    def clear(self) -> None:
        self._registered.clear()


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"bad script name {name!r}")
    return name
