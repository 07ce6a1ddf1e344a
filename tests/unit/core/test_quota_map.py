from __future__ import annotations

import pytest

from llm_gateway.core.quota_map import TenantEntry, decode_entry, encode_entry


def test_round_trip() -> None:
    assert decode_entry(encode_entry(TenantEntry(requests=50))) == TenantEntry(requests=50)
    assert encode_entry(TenantEntry(requests=0)) == b'{"v":1,"requests":0}'


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    assert decode_entry(b'{"v":1,"requests":3,"addedLater":{"x":1}}') == TenantEntry(requests=3)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"{nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"requests":3}', "unsupported schema version None"),
        (b'{"v":2,"requests":3}', "unsupported schema version 2"),
        (b'{"v":1,"requests":-1}', "non-negative integer"),
        (b'{"v":1,"requests":"5"}', "non-negative integer"),
        (b'{"v":1,"requests":true}', "non-negative integer"),
    ],
)
def test_unusable_entries_say_why(raw: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        decode_entry(raw)
