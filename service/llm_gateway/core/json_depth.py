"""Nesting depth of a JSON text, checked on the raw bytes before it is parsed (pure).

Why before: a parser given ``[[[[...`` builds (and later a serializer walks) every level, and orjson
re-serializes at most 254 levels, so a body nested deeper than that could be parsed but not
forwarded after redaction. Checking the bytes first refuses it at C speed without building anything.
"""

from __future__ import annotations

__all__ = ["nested_deeper_than"]

_OPEN_AS_ONE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """True when ``body``'s arrays and objects nest more than ``limit`` levels.

    Most bodies have no more opening brackets than ``limit`` and are answered by two counts. Otherwise
    strings are cut out, the brackets left are reduced to one kind, and innermost pairs are removed
    ``limit`` times: each pass removes exactly one level, so anything left is deeper. Unbalanced
    (invalid) JSON may be reported either way; the parser refuses it anyway. Every step is a bytes
    method (C), never a loop over bytes in Python.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # Escaped backslashes, then escaped quotes, go first (pairing from the left, as JSON does), so
    # that every quote left delimits a string: splitting on quotes puts strings at odd indices.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[::2]).translate(_OPEN_AS_ONE, _NOT_BRACKET)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)
