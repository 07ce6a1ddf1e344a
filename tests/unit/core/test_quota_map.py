from __future__ import annotations

import pytest

from llm_gateway.core.quota_map import TenantEntry, decode_entry, encode_entry


def test_round_trip() -> None:
    assert decode_entry(encode_entry(TenantEntry(requests=50))) == TenantEntry(requests=50)
    assert encode_entry(TenantEntry(requests=0)) == b'{"v":1,"requests":0}'


def test_optional_fields_round_trip_and_stay_out_when_unset() -> None:
    entry = TenantEntry(
        requests=5,
        window_secs=3600,
        rps=2.5,
        burst=4,
        allowed_models=frozenset({"gpt-4o", "gpt-4o-mini"}),
        suspended=True,
    )
    assert decode_entry(encode_entry(entry)) == entry
    assert encode_entry(entry) == (
        b'{"v":1,"requests":5,"window_secs":3600,"rps":2.5,"burst":4,'
        b'"allowed_models":["gpt-4o","gpt-4o-mini"],"suspended":true}'
    )


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    assert decode_entry(b'{"v":1,"requests":3,"addedLater":{"x":1}}') == TenantEntry(requests=3)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"{nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"requests":3}', "unsupported schema version None"),
        (b'{"v":2,"requests":3}', "unsupported schema version 2"),
        (b'{"v":1,"requests":-1}', "'requests' must be an integer from 0"),
        (b'{"v":1,"requests":"5"}', "'requests' must be an integer from 0"),
        (b'{"v":1,"requests":true}', "'requests' must be an integer from 0"),
        (b'{"v":1}', "'requests' must be an integer from 0"),
        (b'{"v":1,"requests":1,"window_secs":0}', "'window_secs' must be an integer from 1"),
        (b'{"v":1,"requests":1,"burst":0}', "'burst' must be an integer from 1"),
        (b'{"v":1,"requests":1,"rps":0}', "'rps' must be a number greater than 0"),
        (b'{"v":1,"requests":1,"rps":"fast"}', "'rps' must be a number greater than 0"),
        (b'{"v":1,"requests":1,"allowed_models":"gpt-4o"}', "'allowed_models' must be a list of strings"),
        (b'{"v":1,"requests":1,"allowed_models":[1]}', "'allowed_models' must be a list of strings"),
        (b'{"v":1,"requests":1,"suspended":"yes"}', "'suspended' must be true or false"),
        (
            b'{"v":1,"requests":1,"window_secs":100000000000000000}',
            "'window_secs' must be an integer from 1 to",
        ),
        (b'{"v":1,"requests":1,"tokens":{"total":5,"window_secs":2678401}}', "'tokens.window_secs' must be"),
        (b'{"v":1,"requests":1,"tokens":{"output":-1}}', "'tokens.output' must be an integer from 0"),
        (
            b'{"v":1,"requests":1,"tokens":{"window_secs":60}}',
            "at least one of 'total', 'input' and 'output'",
        ),
        (b'{"v":1,"requests":1,"tokens":[5]}', "'tokens' must be an object"),
    ],
)
def test_unusable_entries_say_why(raw: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        decode_entry(raw)
