"""Server-sent events, sans-I/O: one decoder and one event model for every reader of a stream.

:class:`SSEDecoder` turns an upstream byte stream, cut anywhere, into whole :class:`SSEEvent` s, so
the gateway never forwards half an event and can always end a stream with a well-formed event of
its own. Framing follows the WHATWG HTML "server-sent events" parsing rules: lines end in CRLF, LF
or CR; a line starting with ``:`` is a comment; ``field: value`` loses one space after the colon; a
line without a colon is a field with an empty value; ``data`` lines join with ``\\n``; a blank line
ends an event. Every field is kept (``id``, ``event``, ``retry``, unknown ones, comments), and an
event nobody changes is forwarded as the exact bytes that came in.

Work is linear in the bytes received: each byte is looked at once, and a line that arrives in many
small chunks is joined once, when it ends.
"""

from __future__ import annotations

import re

__all__ = ["DONE", "KEEPALIVE", "SSEDecoder", "SSEEvent", "encode_events", "format_event"]

#: The data of the event that ends an OpenAI-style stream.
DONE = b"[DONE]"

#: An SSE comment: ignored by clients, keeps proxies and load balancers from closing a quiet stream.
KEEPALIVE = b": keep-alive\n\n"

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


class SSEEvent:
    """One event: its lines (without line ends) and its exact bytes (ending with the blank line).

    ``data`` is the event's data (its ``data`` lines' values joined with ``\\n``), or None when it
    has no ``data`` line (a comment, or an ``id``/``retry`` alone). Build rewritten events with
    :meth:`with_data`; never mutate one.
    """

    __slots__ = ("data", "lines", "raw")

    def __init__(self, lines: tuple[bytes, ...], raw: bytes) -> None:
        self.lines = lines
        self.raw = raw
        if len(lines) == 1 and lines[0].startswith(b"data: "):  # the usual shape: one `data: ` line
            self.data: bytes | None = lines[0][6:]
        else:
            values = [value for name, value in map(_field, lines) if name == b"data"]
            self.data = b"\n".join(values) if values else None

    @classmethod
    def of_data(cls, data: bytes) -> SSEEvent:
        """A new event carrying ``data`` (split into one ``data:`` line per line of it)."""
        lines = tuple(b"data: " + line for line in data.split(b"\n"))
        return cls(lines, b"\n".join(lines) + b"\n\n")

    def field(self, name: bytes) -> bytes | None:
        """The last value of field ``name`` (``event``, ``id``, ``retry``), or None."""
        found = None
        for field_name, value in map(_field, self.lines):
            if field_name == name:
                found = value
        return found

    def with_data(self, data: bytes) -> SSEEvent:
        """This event with its data replaced: every other line kept, in place, the data where its
        first ``data`` line was (one ``data:`` line per line of ``data``); line ends become LF."""
        new_lines: list[bytes] = []
        placed = False
        for line in self.lines:
            if _field(line)[0] != b"data":
                new_lines.append(line)
            elif not placed:
                new_lines.extend(b"data: " + part for part in data.split(b"\n"))
                placed = True
        if not placed:
            new_lines.extend(b"data: " + part for part in data.split(b"\n"))
        return SSEEvent(tuple(new_lines), b"\n".join(new_lines) + b"\n\n")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SSEEvent) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"SSEEvent({self.raw!r})"


def _field(line: bytes) -> tuple[bytes, bytes]:
    """``(name, value)`` of one line; comments have the name ``b""``."""
    if line.startswith(b":"):
        return b"", line[1:]
    name, colon, value = line.partition(b":")
    if colon and value.startswith(b" "):
        value = value[1:]
    return name, value


class SSEDecoder:
    """Splits SSE bytes into complete events.

    ``decode(chunk)`` returns the events that ``chunk`` completed, in order. A CR that ends a chunk
    ends its line at once (an LF starting the next chunk is then the second half of that CRLF and
    is dropped). Blank lines between events are dropped. At the end of the stream, ``finish()``
    returns an event made of complete lines that no blank line ended (a stream whose last bytes are
    ``data: [DONE]\\n``), and sets ``truncated`` when bytes after the last line end remain: the
    stream was cut inside a line, and that partial event is dropped.
    """

    __slots__ = (
        "_lines",
        "_partial",
        "_partial_size",
        "_raw",
        "_raw_size",
        "_skip_lf",
        "_started",
        "truncated",
    )

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # pieces of a line not ended yet, joined once when it ends
        self._partial_size = 0
        self._lines: list[bytes] = []  # the current event's complete lines
        self._raw: list[bytes] = []  # the same lines with their line ends, as received
        self._raw_size = 0
        self._skip_lf = False
        self._started = False
        self.truncated = False

    @property
    def pending_bytes(self) -> int:
        """How many bytes of an event not ended yet are held (a caller bounds it)."""
        return self._partial_size + self._raw_size

    def decode(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if not self._started:
            self._started = True
            chunk = chunk.removeprefix(_BOM)
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        events: list[SSEEvent] = []
        if b"\r" not in chunk:
            pieces = chunk.split(b"\n")
            last = pieces.pop()
            for piece in pieces:
                self._line(piece, b"\n", events)
        else:
            start = 0
            for match in _LINE_END.finditer(chunk):
                self._line(chunk[start : match.start()], match.group(), events)
                start = match.end()
            last = chunk[start:]
            self._skip_lf = chunk.endswith(b"\r")
        if last:
            self._partial.append(last)
            self._partial_size += len(last)
        return events

    def finish(self) -> SSEEvent | None:
        """The end of the stream: an unended event of complete lines, or None (see the class)."""
        self.truncated = bool(self._partial)
        event = None
        if self._lines and not self.truncated:  # written anew: a CR line end then LF would join lines
            event = SSEEvent(tuple(self._lines), b"\n".join(self._lines) + b"\n\n")
        self._partial.clear()
        self._lines.clear()
        self._raw.clear()
        self._partial_size = self._raw_size = 0
        return event

    def _line(self, piece: bytes, end: bytes, events: list[SSEEvent]) -> None:
        if self._partial:
            self._partial.append(piece)
            piece = b"".join(self._partial)
            self._partial.clear()
            self._partial_size = 0
        if piece:
            self._lines.append(piece)
            self._raw.append(piece + end)
            self._raw_size += len(piece) + len(end)
        elif self._lines:
            self._raw.append(end)
            events.append(SSEEvent(tuple(self._lines), b"".join(self._raw)))
            self._lines.clear()
            self._raw.clear()
            self._raw_size = 0


def encode_events(events: list[SSEEvent]) -> bytes:
    """The events' bytes, back to back (each already ends with its blank line)."""
    return b"".join(event.raw for event in events)


def format_event(data: bytes) -> bytes:
    """One ``data:`` event carrying ``data`` (which must not contain a newline, as JSON bytes don't)."""
    return b"data: " + data + b"\n\n"
