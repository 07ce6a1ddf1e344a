"""How a detected value is replaced: ``mask`` (the old gateway's shapes), ``placeholder`` or ``hash``."""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from llm_gateway.core.redaction.entities import Entity

__all__ = ["Mode", "Replacer"]

Mode = Literal["mask", "placeholder", "hash"]

_MASK_PREFIX = {
    Entity.CREDIT_CARD: "CC_MASKED_LAST4_",
    Entity.PHONE: "PHONE_MASKED_LAST4_",
    Entity.US_SSN: "SSN_MASKED_LAST4_",
    Entity.IBAN: "IBAN_MASKED_LAST4_",
}


class Replacer:
    """Turns ``(entity, value)`` into the text that stands in for it.

    ``mask``: ``j***e@example.com``, ``CC_MASKED_LAST4_4242`` (and the same ``*_MASKED_LAST4_`` shape
    for phones, SSNs and IBANs), ``IP_MASKED``, ``SECRET_MASKED``. ``placeholder``: ``[EMAIL]``.
    ``hash``: ``[EMAIL:3f9a0c1d2e4b]``, the first 12 hex digits of HMAC-SHA256 over the entity and
    value with ``hash_key``: stable for equal values, not reversible without the key.
    """

    def __init__(self, mode: Mode, hash_key: bytes | None = None) -> None:
        if mode == "hash" and not hash_key:
            raise ValueError("hash mode needs a key")
        self._mode = mode
        self._key = hash_key or b""

    def __call__(self, entity: Entity, value: str) -> str:
        if self._mode == "placeholder":
            return f"[{entity.value}]"
        if self._mode == "hash":
            digest = hmac.new(self._key, f"{entity.value}:{value}".encode(), hashlib.sha256).hexdigest()
            return f"[{entity.value}:{digest[:12]}]"
        return _mask(entity, value)


def _mask(entity: Entity, value: str) -> str:
    if entity is Entity.EMAIL:
        local, _, domain = value.rpartition("@")
        shown = f"{local[0]}***{local[-1]}" if len(local) > 1 else "***"
        return f"{shown}@{domain}"
    prefix = _MASK_PREFIX.get(entity)
    if prefix is not None:
        tail = "".join(ch for ch in value if ch.isalnum())[-4:]
        return prefix + tail
    if entity is Entity.IP_ADDRESS:
        return "IP_MASKED"
    return "SECRET_MASKED"
