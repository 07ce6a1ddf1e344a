"""Reading a request body: JSON only, bounded in size, optionally gzip- or deflate-encoded, and
bounded across the replica so that many large bodies at once cannot exhaust its memory."""

from __future__ import annotations

import asyncio
import zlib

from llm_gateway.api.asgi_io import Receive, Scope
from llm_gateway.core.concurrency import ConcurrencyLimit
from llm_gateway.core.headers import header
from llm_gateway.errors import InvalidRequest, Overloaded, PayloadTooLarge, UnsupportedMediaType

__all__ = ["ClientDisconnected", "read_json_body", "take"]

#: ``Content-Encoding`` values a body may have, and the zlib window bits that decode them.
#: ``deflate`` is the zlib format, as HTTP defines it; a body in raw deflate (what some clients send
#: under that name) is recognised by its missing zlib header and read too.
_DECODERS = {b"gzip": 16 + zlib.MAX_WBITS, b"x-gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}
#: Decoded bytes produced per step; the event loop serves others between steps.
_INFLATE_STEP = 1 << 20


class ClientDisconnected(Exception):
    """The client went away before its request body was complete; there is no one to answer."""


async def read_json_body(scope: Scope, receive: Receive, limit: int, buffered: ConcurrencyLimit) -> bytes:
    """The whole request body, decoded: refuses non-JSON (415), an encoding other than ``gzip`` or
    ``deflate`` (415, naming it), anything over ``limit`` bytes as sent or as decoded (413: a
    decompression bomb stops at ``limit``) and corrupt encoded data (400).

    Bytes are taken from ``buffered``, the replica's budget for bodies held at once (503 when it is
    spent), as they arrive; the caller releases ``len(body)`` when done with the body. An encoded
    body is decoded only once it has arrived whole, so a client that sends a few compressed bytes
    and stalls holds only those. A declared ``Content-Length`` over the limit is refused before a
    byte is read. Raises :class:`ClientDisconnected` when the client leaves before the body is
    complete.
    """
    content_type = header(scope, b"content-type")
    if content_type is None or content_type.split(b";", 1)[0].strip().lower() != b"application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    encoding = (header(scope, b"content-encoding") or b"identity").strip().lower()
    wbits = 0
    if encoding != b"identity":
        wbits = _DECODERS.get(encoding, 0)
        if not wbits:
            shown = encoding.decode("latin-1")[:40]
            raise UnsupportedMediaType(
                f"Content-Encoding {shown!r} is not supported; send gzip, deflate or no encoding",
                code="unsupported_content_encoding",
            )
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes")
    body = await _receive(receive, limit, buffered)
    if not wbits:
        return body
    try:
        return await _decode(body, encoding, wbits, limit, buffered)
    finally:
        buffered.release(len(body))


def take(budget: ConcurrencyLimit, amount: int) -> None:
    """Take ``amount`` bytes from the replica's ``budget`` for bodies, or refuse with 503."""
    if not budget.try_acquire(amount):
        raise Overloaded("too many large request bodies in flight; retry shortly")


class _Held:
    """The bytes of a body being read: counted against its ``limit`` and taken from the replica's
    ``budget`` as they come; :meth:`give_back` returns them all (on a failure)."""

    __slots__ = ("_budget", "_limit", "parts", "size")

    def __init__(self, limit: int, budget: ConcurrencyLimit) -> None:
        self._limit = limit
        self._budget = budget
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes, *, decoded: bool = False) -> None:
        self.size += len(chunk)
        if self.size > self._limit:
            raise PayloadTooLarge(
                f"request body exceeds {self._limit} bytes" + (" once decoded" if decoded else "")
            )
        take(self._budget, len(chunk))
        self.parts.append(chunk)

    def joined(self) -> bytes:
        return self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)

    def give_back(self) -> None:
        self._budget.release(sum(map(len, self.parts)))
        self.parts.clear()  # an exception's traceback keeps the reader's frame, and so this, alive


async def _receive(receive: Receive, limit: int, buffered: ConcurrencyLimit) -> bytes:
    """The body as sent, each chunk taken from ``buffered`` as it arrives (given back on failure)."""
    held = _Held(limit, buffered)
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            held.add(message.get("body", b""))
            if not message.get("more_body", False):
                return held.joined()
    except BaseException:
        held.give_back()
        raise


async def _decode(data: bytes, encoding: bytes, wbits: int, limit: int, buffered: ConcurrencyLimit) -> bytes:
    """``data`` decoded in steps of ``_INFLATE_STEP`` bytes, each taken from ``buffered`` (given back
    on failure); the event loop serves others between steps. A gzip body may hold several members
    (RFC 1952), read one after the other; anything else after the end of the data is refused."""
    held = _Held(limit, buffered)
    try:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS if _raw_deflate(encoding, data) else wbits)
        while True:
            try:
                piece = inflater.decompress(data, min(limit - held.size + 1, _INFLATE_STEP))
            except zlib.error:
                raise InvalidRequest("request body is not valid compressed data", code=_INVALID) from None
            held.add(piece, decoded=True)
            data = inflater.unconsumed_tail
            if inflater.eof:
                if not inflater.unused_data:
                    return held.joined()
                if encoding == b"deflate":
                    raise InvalidRequest("request body has data after its deflate stream", code=_INVALID)
                data, inflater = inflater.unused_data, zlib.decompressobj(wbits)  # the next gzip member
            elif not data and not piece:
                raise InvalidRequest(f"request body ends inside its {encoding.decode()} data", code=_INVALID)
            await asyncio.sleep(0)
    except BaseException:
        held.give_back()
        piece = data = b""  # the same for the last piece and the input left
        raise


_INVALID = "invalid_content_encoding"


def _raw_deflate(encoding: bytes, first: bytes) -> bool:
    """Whether a ``deflate`` body starts without the zlib header (RFC 1950: method 8, a check
    that makes the first two bytes a multiple of 31)."""
    if encoding != b"deflate" or not first:
        return False
    if len(first) < 2:
        return first[0] & 0x0F != 8
    return first[0] & 0x0F != 8 or (first[0] << 8 | first[1]) % 31 != 0
