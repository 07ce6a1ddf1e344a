from __future__ import annotations

import pytest

from openaimock.directives import Directives, parse_directives


def test_no_directives_by_default() -> None:
    assert parse_directives(None, "gpt-4o-mini") == Directives()


def test_model_name_carries_directives() -> None:
    assert parse_directives(None, "mock:echo,drop-after=3,inter-token-ms=50") == Directives(
        echo=True, drop_after=3, inter_token_ms=50
    )


def test_header_overrides_the_model_name() -> None:
    assert parse_directives("status=500", "mock:status=429,latency-ms=10") == Directives(
        status=500, latency_ms=10
    )


@pytest.mark.parametrize("text", ["explode", "status=abc", "echo=1", "drop-after=-1"])
def test_rejects_unknown_or_malformed_directives(text: str) -> None:
    with pytest.raises(ValueError):
        parse_directives(text, None)


def test_reply_and_chunk_chars() -> None:
    directives = parse_directives(None, "mock:reply=aGkgdGhlcmU,chunk-chars=3")
    assert (directives.reply, directives.chunk_chars) == ("hi there", 3)
    with pytest.raises(ValueError):
        parse_directives("reply=***", None)
