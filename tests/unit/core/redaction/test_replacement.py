from __future__ import annotations

import pytest

from llm_gateway.core.redaction import Entity, Redactor, Replacer


def test_mask_keeps_the_old_gateways_shapes() -> None:
    mask = Redactor(Replacer("mask"))
    assert mask.redact("jane@example.com") == "j***e@example.com"
    assert mask.redact("a@example.com") == "***@example.com"
    assert mask.redact("4242 4242 4242 4242") == "CC_MASKED_LAST4_4242"
    assert mask.redact("+14155552671") == "PHONE_MASKED_LAST4_2671"


def test_hash_is_stable_keyed_and_not_the_value() -> None:
    one = Replacer("hash", b"key-1")
    other = Replacer("hash", b"key-2")
    token = one(Entity.EMAIL, "jane@example.com")
    assert token == one(Entity.EMAIL, "jane@example.com")
    assert token.startswith("[EMAIL:") and len(token) == len("[EMAIL:]") + 12
    assert token != one(Entity.EMAIL, "john@example.com")
    assert token != other(Entity.EMAIL, "jane@example.com")
    assert "jane" not in token


def test_hash_mode_needs_a_key() -> None:
    with pytest.raises(ValueError):
        Replacer("hash")
