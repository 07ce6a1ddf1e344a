"""Reading request bodies: encodings, size limits as sent and decoded, the replica's byte budget.

ASGI ``receive`` is an in-process fake here (the real server is in tests/integration/test_bodies.py)."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.api.request_body import ClientDisconnected, read_json_body
from llm_gateway.core.concurrency import ConcurrencyLimit
from llm_gateway.errors import GatewayError, InvalidRequest, Overloaded, PayloadTooLarge, UnsupportedMediaType

LIMIT = 1 << 20
BODY = b'{"model":"m","messages":[{"role":"user","content":"' + b"x" * 5000 + b'"}]}'


def scope(encoding: bytes | None = None, content_type: bytes = b"application/json") -> dict[str, Any]:
    headers = [(b"content-type", content_type)]
    if encoding is not None:
        headers.append((b"content-encoding", encoding))
    return {"type": "http", "headers": headers}


def read(
    data: bytes, encoding: bytes | None = None, *, cuts: int = 1, budget: ConcurrencyLimit | None = None
) -> bytes:
    """``data`` sent in ``cuts`` messages, read back."""
    size = max(1, -(-len(data) // cuts))
    messages = [data[i : i + size] for i in range(0, len(data), size)] or [b""]

    async def receive() -> dict[str, Any]:
        body = messages.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(messages)}

    return asyncio.run(read_json_body(scope(encoding), receive, LIMIT, budget or ConcurrencyLimit(LIMIT * 4)))


def raw_deflate(data: bytes) -> bytes:
    """RFC 1951 deflate without the zlib header: what some clients send as ``deflate``."""
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODINGS = {
    None: lambda data: data,
    b"gzip": gzip.compress,
    b"GZIP": gzip.compress,
    b"x-gzip": gzip.compress,
    b"deflate": zlib.compress,
    b"deflate ": raw_deflate,  # (a space: a second key for the same encoding, read raw)
}


@settings(max_examples=60, deadline=None)
@given(cuts=st.integers(1, 40), encoding=st.sampled_from(list(ENCODINGS)))
def test_every_encoding_and_any_chunking_reads_the_same_body(cuts: int, encoding: bytes | None) -> None:
    assert read(ENCODINGS[encoding](BODY), encoding, cuts=cuts) == BODY


def test_a_decompression_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b" " * (LIMIT * 20))  # ~20 KB that would decode to 20 MiB
    assert len(bomb) < 50_000
    budget = ConcurrencyLimit(LIMIT * 4)
    with pytest.raises(PayloadTooLarge):
        read(bomb, b"gzip", cuts=3, budget=budget)
    assert budget.in_flight == 0  # what was taken was given back


@pytest.mark.parametrize(
    ("encoding", "data", "error", "code"),
    [
        (b"br", BODY, UnsupportedMediaType, "unsupported_content_encoding"),
        (b"gzip, gzip", BODY, UnsupportedMediaType, "unsupported_content_encoding"),
        (b"gzip", b"not gzip at all", InvalidRequest, "invalid_content_encoding"),
        (b"gzip", gzip.compress(BODY)[:-20], InvalidRequest, "invalid_content_encoding"),  # cut short
        (b"deflate", gzip.compress(BODY), InvalidRequest, "invalid_content_encoding"),
    ],
)
def test_what_cannot_be_decoded_is_refused_naming_why(
    encoding: bytes, data: bytes, error: type[GatewayError], code: str
) -> None:
    with pytest.raises(error) as caught:
        read(data, encoding)
    assert caught.value.code == code
    if error is UnsupportedMediaType:
        assert encoding.decode() in caught.value.message


def test_a_body_beyond_the_replicas_budget_is_shed_and_gives_back_what_it_took() -> None:
    budget = ConcurrencyLimit(len(BODY) * 2)
    assert budget.try_acquire(len(BODY) + 1)  # another request holds more than half
    with pytest.raises(Overloaded):
        read(BODY, cuts=4, budget=budget)
    assert budget.in_flight == len(BODY) + 1
    budget.release(len(BODY) + 1)
    assert read(BODY, budget=budget) == BODY and budget.in_flight == len(BODY)  # the caller releases it


def test_a_client_that_leaves_mid_body_gives_back_what_it_took() -> None:
    budget = ConcurrencyLimit(LIMIT)
    messages = [{"type": "http.request", "body": BODY[:100], "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    with pytest.raises(ClientDisconnected):
        asyncio.run(read_json_body(scope(), receive, LIMIT, budget))
    assert budget.in_flight == 0


def test_only_json_is_read() -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("the body must not be read")

    with pytest.raises(UnsupportedMediaType):
        asyncio.run(
            read_json_body(scope(content_type=b"text/plain"), receive, LIMIT, ConcurrencyLimit(LIMIT))
        )


def test_a_gzip_body_of_several_members_is_read_whole_and_trailing_junk_is_refused() -> None:
    half = len(BODY) // 2
    assert read(gzip.compress(BODY[:half]) + gzip.compress(BODY[half:]), b"gzip", cuts=3) == BODY
    with pytest.raises(InvalidRequest):
        read(gzip.compress(BODY) + b"junk after the end", b"gzip")
    with pytest.raises(InvalidRequest):
        read(zlib.compress(BODY) + b"junk", b"deflate")


def test_only_the_decoded_body_stays_taken_from_the_budget() -> None:
    budget = ConcurrencyLimit(LIMIT * 4)
    assert read(gzip.compress(BODY), b"gzip", budget=budget) == BODY
    assert budget.in_flight == len(BODY)  # the compressed bytes were given back


def test_a_bomb_never_holds_more_than_the_budget_while_it_is_decoded() -> None:
    budget = ConcurrencyLimit(3 << 20)  # 3 MiB for all bodies; the bomb decodes to 20 MiB
    with pytest.raises(Overloaded):
        asyncio.run(read_json_body(scope(b"gzip"), _once(gzip.compress(b" " * (20 << 20))), 64 << 20, budget))
    assert budget.in_flight == 0


def _once(data: bytes) -> Any:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": data, "more_body": False}

    return receive
