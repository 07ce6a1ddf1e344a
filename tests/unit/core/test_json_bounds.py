"""The raw-bytes depth check agrees with the parsed document's real depth."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.core.json_bounds import nested_deeper_than


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(item) for item in value), default=0)
    return 0


# Strings full of brackets, quotes and backslashes: what a scan that ignored strings would miscount.
tricky_text = st.text(alphabet='[]{}"\\ab\n', max_size=12)
documents = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | tricky_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4),
    max_leaves=60,
)


@given(documents, st.integers(min_value=0, max_value=12))
def test_agrees_with_the_parsed_depth(document: Any, limit: int) -> None:
    body = orjson.dumps(document)
    assert nested_deeper_than(body, limit) == (depth(document) > limit)


def test_brackets_inside_strings_do_not_count() -> None:
    body = orjson.dumps({"content": "[" * 500 + "{" * 500, "escaped": '\\"[[[['})
    assert not nested_deeper_than(body, 2)


def test_deep_nesting_is_found_without_parsing() -> None:
    assert nested_deeper_than(b'{"a":' + b"[" * 100_000, 64)  # not even valid JSON: never parsed
    assert not nested_deeper_than(b"[" * 64 + b"]" * 64, 64)
    assert nested_deeper_than(b"[" * 65 + b"]" * 65, 64)
