"""The upstream key never reaches a client: whole, escaped-then-decoded, or cut short at the end."""

from __future__ import annotations

import pytest

from llm_gateway.core.scrub import scrub_bytes, scrub_text

KEY = "sk-local-mock-key"


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        (f"Bearer {KEY} was refused", "Bearer [REDACTED] was refused"),
        (f"{KEY}{KEY}", "[REDACTED][REDACTED]"),
        ("Bearer sk-local-mock-ke", "Bearer [REDACTED]"),  # cut short by a length bound
        ("Bearer sk-l", "Bearer [REDACTED]"),
        ("Bearer sk-", "Bearer sk-"),  # three characters say nothing
        ("nothing to see", "nothing to see"),
    ],
)
def test_a_text_keeps_no_part_of_the_key(text: str, scrubbed: str) -> None:
    assert scrub_text(text, KEY) == scrubbed


def test_bytes_are_returned_as_they_are_when_the_key_is_absent() -> None:
    data = b"data: {}\n\n"
    assert scrub_bytes(data, KEY.encode()) is data
    assert scrub_bytes(b"x " + KEY.encode(), KEY.encode()) == b"x [REDACTED]"
    assert scrub_bytes(data, b"") is data
