"""Where JSON text is inside a string, tracked over a stream of fragments (pure).

Tool-call arguments are JSON text that the model writes a few characters at a time. Redaction scans
that text as it comes; a value it replaces inside a string stays a string, but one that stood bare
(``{"card": 4111111111111111}``) must be quoted, or the arguments would no longer parse.
"""

from __future__ import annotations

import re

__all__ = ["JsonStrings"]

# An escape (backslash and the character it escapes), a backslash ending the text, or a quote.
_SIGNIFICANT = re.compile(r'\\[\s\S]|\\\Z|"')


class JsonStrings:
    """The string state of JSON text read so far: ``advance(text)`` reads on."""

    __slots__ = ("_escaped", "_inside")

    def __init__(self) -> None:
        self._inside = False
        self._escaped = False  # the text so far ends with a backslash inside a string

    @property
    def inside(self) -> bool:
        """The text read so far ends inside a string."""
        return self._inside

    def copy(self) -> JsonStrings:
        twin = JsonStrings()
        twin._inside, twin._escaped = self._inside, self._escaped
        return twin

    def advance(self, text: str) -> None:
        self._inside, self._escaped = self._read(text)

    def _read(self, text: str) -> tuple[bool, bool]:
        inside, escaped, start = self._inside, self._escaped, 0
        if escaped and text:
            escaped, start = False, 1
        for match in _SIGNIFICANT.finditer(text, start):
            token = match.group()
            if token == '"':
                inside = not inside
            elif token == "\\":  # a backslash at the end: the next text starts with what it escapes
                escaped = inside
        return inside, escaped
