"""How deep and how big a JSON text is, checked on the raw bytes before it is parsed (pure).

Why before: a parser given ``[[[[...`` builds (and later a serializer walks) every level, and orjson
re-serializes at most 254 levels, so a body nested deeper than that could be parsed but not
forwarded after redaction. And parsed JSON costs far more than its text where the text is many
small elements (``[],[],[],…``: 3 bytes each, about 60 bytes each once parsed, and parsing holds
the interpreter's lock): a 47 KB gzip body of them took 1.6 GB and 9 s. Checking the bytes first
refuses such bodies at C speed without building anything.
"""

from __future__ import annotations

__all__ = ["elements_in", "nested_deeper_than"]

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
    brackets = _outside_strings(body).translate(_OPEN_AS_ONE, _NOT_BRACKET)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def elements_in(body: bytes, limit: int) -> int:
    """How many elements (array items and object members, all levels together) ``body`` has, at
    most; counted without its strings whenever the quick bound passes ``limit``.

    Every element but the first of a container follows a comma, and every container opens with a
    bracket, so commas plus opening brackets plus one bound the count. Three counts answer most
    bodies; commas and brackets inside strings count too, so a bound over ``limit`` is made exact
    by counting again with the strings cut out.
    """
    bound = _count(body)
    return _count(_outside_strings(body)) if bound > limit else bound


def _count(text: bytes) -> int:
    return text.count(b",") + text.count(b"[") + text.count(b"{") + 1


def _outside_strings(body: bytes) -> bytes:
    """``body`` with its strings cut out. Escaped backslashes, then escaped quotes, go first
    (pairing from the left, as JSON does), so that every quote left delimits a string: splitting on
    quotes puts strings at odd indices."""
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(unescaped.split(b'"')[::2])
