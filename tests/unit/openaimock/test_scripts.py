"""The mock's scripted responses: exact bytes, one write each, named and validated."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from openaimock.scripts import Script, ScriptBook


def test_text_and_base64_writes_become_exact_bytes() -> None:
    text = Script.from_json(orjson.dumps({"writes": ["data: a\r\n", "\r\n"], "write_delay_ms": 5}))
    raw = Script.from_json(
        orjson.dumps(
            {
                "writes_b64": [base64.b64encode(b"\xff\x00").decode()],
                "status": 502,
                "headers": {"retry-after": "7"},
            }
        )
    )
    assert (text.writes, text.write_delay_ms, text.status, text.content_type) == (
        (b"data: a\r\n", b"\r\n"),
        5,
        200,
        "text/event-stream",
    )
    assert (raw.writes, raw.status, raw.headers) == ((b"\xff\x00",), 502, (("retry-after", "7"),))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "a script is a JSON object"),
        ({}, "a script needs writes or writes_b64"),
        ({"writes": "x"}, "writes must be a list"),
        ({"writes": [1]}, "expected a string, got int"),
        ({"writes": [], "status": 42}, "status must be an HTTP status"),
        ({"writes": [], "write_delay_ms": -1}, "write_delay_ms must be a non-negative integer"),
        ({"writes": [], "headers": []}, "headers must be an object of strings"),
        ({"writes": [], "headers": {"a": 1}}, "expected a string, got int"),
    ],
)
def test_bad_scripts_are_refused_with_the_reason(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Script.from_json(orjson.dumps(spec))


def test_registered_scripts_win_over_files_and_names_are_checked(tmp_path: Path) -> None:
    (tmp_path / "hello.json").write_text('{"writes": ["from file"]}')
    book = ScriptBook(tmp_path)
    assert book.get("hello").writes == (b"from file",)
    book.register("hello", Script.from_json(b'{"writes": ["registered"]}'))
    assert book.get("hello").writes == (b"registered",)
    book.clear()
    assert book.get("hello").writes == (b"from file",)
    with pytest.raises(ValueError, match="no script named 'other'"):
        book.get("other")
    with pytest.raises(ValueError, match="bad script name"):
        book.get("../etc/passwd")
