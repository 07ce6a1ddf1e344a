"""Server-sent events framing, sans-I/O.

:class:`SSEDecoder` turns an upstream byte stream, cut anywhere, into whole events, so the gateway
never forwards half an event and can always end a stream with a well-formed event of its own.
"""

from __future__ import annotations

__all__ = ["KEEPALIVE", "SSEDecoder", "encode_events", "format_event"]

#: An SSE comment: ignored by clients, keeps proxies and load balancers from closing a quiet stream.
KEEPALIVE = b": keep-alive\n\n"


class SSEDecoder:
    """Splits SSE bytes into complete events.

    ``decode(chunk)`` returns the events completed by ``chunk``, in order, each without its
    terminating blank line; line endings are normalised to ``\\n`` (SSE allows CRLF, LF and CR; a CR
    that ends a chunk ends a line at once, and an LF starting the next chunk is then dropped as the
    second half of a CRLF). Bytes after the last blank line are kept for the next call. ``flush()``
    returns whatever is left when the stream ends: ``b""`` when it ended on an event boundary, else
    an unterminated (truncated) event.
    """

    __slots__ = ("_buffer", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""
        self._skip_lf = False

    def decode(self, chunk: bytes) -> list[bytes]:
        if self._skip_lf or b"\r" in chunk:
            chunk = self._normalise(chunk)
        parts = (self._buffer + chunk if self._buffer else chunk).split(b"\n\n")
        self._buffer = parts.pop()
        # Extra blank lines between events leave newlines at an event's start: no-ops, dropped.
        return [part.lstrip(b"\n") for part in parts if part.strip(b"\n")]

    def flush(self) -> bytes:
        rest, self._buffer, self._skip_lf = self._buffer, b"", False
        return rest if rest.strip(b"\n") else b""

    def _normalise(self, chunk: bytes) -> bytes:
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        if chunk:
            self._skip_lf = chunk.endswith(b"\r")
        return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def encode_events(events: list[bytes]) -> bytes:
    """Frame decoded events back into SSE bytes (each followed by a blank line)."""
    return b"\n\n".join(events) + b"\n\n"


def format_event(data: bytes) -> bytes:
    """One ``data:`` event carrying ``data`` (which must not contain a newline, as JSON bytes don't)."""
    return b"data: " + data + b"\n\n"
