"""Reading a request body: JSON only, bounded in size, optionally gzip- or deflate-encoded, and
bounded across the replica so that many large bodies at once cannot exhaust its memory."""

from __future__ import annotations

import asyncio
import zlib

from llm_gateway.api.asgi_io import Receive, Scope
from llm_gateway.core.concurrency import ConcurrencyLimit
from llm_gateway.core.headers import header
from llm_gateway.errors import InvalidRequest, Overloaded, PayloadTooLarge, UnsupportedMediaType

__all__ = ["ClientDisconnected", "read_json_body"]

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

    The decoded bytes are taken from ``buffered``, the replica's budget for bodies held at once
    (503 when it is spent); the caller releases ``len(body)`` when done with the body. A declared
    ``Content-Length`` over the limit is refused before a byte is read. Raises
    :class:`ClientDisconnected` when the client leaves before the body is complete.
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
    inflater = None
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes")
    parts: list[bytes] = []
    size = received = 0
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(f"request body exceeds {limit} bytes")
            if wbits and inflater is None and chunk:
                inflater = zlib.decompressobj(-zlib.MAX_WBITS if _raw_deflate(encoding, chunk) else wbits)
            if inflater is not None:
                chunk = await _inflate(inflater, chunk, limit - size)
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds {limit} bytes")
            if not buffered.try_acquire(len(chunk)):
                raise Overloaded("too many large request bodies in flight; retry shortly")
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        if wbits and (inflater is None or not inflater.eof):
            raise InvalidRequest(
                f"request body ends inside its {encoding.decode()} data", code="invalid_content_encoding"
            )
    except BaseException:
        buffered.release(sum(len(part) for part in parts))
        raise
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _raw_deflate(encoding: bytes, first: bytes) -> bool:
    """Whether a ``deflate`` body starts without the zlib header (RFC 1950: method 8, a check
    that makes the first two bytes a multiple of 31)."""
    if encoding != b"deflate":
        return False
    if len(first) < 2:
        return first[0] & 0x0F != 8
    return first[0] & 0x0F != 8 or (first[0] << 8 | first[1]) % 31 != 0


async def _inflate(inflater: zlib._Decompress, data: bytes, room: int) -> bytes:
    """``data`` decoded; raises :class:`PayloadTooLarge` as soon as the output passes ``room``."""
    out = []
    try:
        while True:
            piece = inflater.decompress(data, min(room + 1, _INFLATE_STEP))
            room -= len(piece)
            if room < 0:
                raise PayloadTooLarge("request body exceeds the size limit once decoded")
            out.append(piece)
            data = inflater.unconsumed_tail
            if not data:
                return b"".join(out)
            await asyncio.sleep(0)
    except zlib.error:
        raise InvalidRequest(
            "request body is not valid compressed data", code="invalid_content_encoding"
        ) from None
