"""Keeping the gateway's upstream key out of what clients receive (pure).

An upstream may echo the credentials it was sent (in an error message, a header, a completion);
whatever of it reaches a client passes through here first. A text that was cut short (a message
bounded in length) may end with the start of the key: that is removed too.
"""

from __future__ import annotations

__all__ = ["REDACTED", "scrub_bytes", "scrub_text"]

REDACTED = "[REDACTED]"
_REDACTED_BYTES = REDACTED.encode()
#: The shortest start of the key that is removed from the end of a cut text.
_MIN_PREFIX = 4


def scrub_bytes(data: bytes, secret: bytes) -> bytes:
    """``data`` with every occurrence of ``secret`` replaced (``data`` itself when there is none)."""
    return data.replace(secret, _REDACTED_BYTES) if secret and secret in data else data


def scrub_text(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret``, and a start of it at its very end, replaced."""
    if not secret:
        return text
    text = text.replace(secret, REDACTED)
    for length in range(min(len(secret) - 1, len(text)), _MIN_PREFIX - 1, -1):
        if text.endswith(secret[:length]):
            return text[:-length] + REDACTED
    return text
