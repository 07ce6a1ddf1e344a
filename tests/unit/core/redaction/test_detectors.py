"""Each entity: positives that must be redacted and hard negatives that must survive untouched."""

from __future__ import annotations

import pytest

from llm_gateway.core.redaction import Entity, Redactor, Replacer

PLACEHOLDER = Redactor(Replacer("placeholder"))

POSITIVES = [
    (Entity.EMAIL, "jane.doe@example.com"),
    (Entity.EMAIL, "j+tag@mail.co.uk"),
    (Entity.CREDIT_CARD, "4242 4242 4242 4242"),
    (Entity.CREDIT_CARD, "4111-1111-1111-1111"),
    (Entity.CREDIT_CARD, "378282246310005"),
    (Entity.PHONE, "+14155552671"),
    (Entity.PHONE, "+44 20 7946 0958"),
    (Entity.PHONE, "(415) 555-2671"),
    (Entity.PHONE, "415-555-2671"),
    (Entity.US_SSN, "123-45-6789"),
    (Entity.IBAN, "DE89 3704 0044 0532 0130 00"),
    (Entity.IBAN, "GB82WEST12345698765432"),
    (Entity.IP_ADDRESS, "192.168.1.10"),
    (Entity.IP_ADDRESS, "2001:db8::1"),
    (Entity.IP_ADDRESS, "::1"),
    (Entity.SECRET, "sk-proj-abcdefghijklmnopqrstuvwx"),
    (Entity.SECRET, "AKIAIOSFODNN7EXAMPLE"),
    (Entity.SECRET, "ghp_" + "a1B2" * 9),
    (Entity.SECRET, "xoxb-1234567890-abcdefghij"),
    (Entity.SECRET, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV"),
    (Entity.CREDIT_CARD, "4242 4242 4242 4242"),  # before an expiry date: see the contexts below
]

# Values next to what follows them in real text: each must be redacted on its own.
IN_CONTEXT = [
    ("Card 4242 4242 4242 4242 12/27, CVV 123.", "Card [CREDIT_CARD] 12/27, CVV 123."),
    ("jane,4111111111111111,12/27", "jane,[CREDIT_CARD],12/27"),
    ("Call 415-555-2671,415-555-2672", "Call [PHONE],[PHONE]"),
    ('{"ssn":"123456789"}', '{"ssn":"[US_SSN]"}'),
    ('{"social_security_number":"123456789"}', '{"social_security_number":"[US_SSN]"}'),
    ("My phone is 5551234567. Call me.", "My phone is [PHONE]. Call me."),
]

NEGATIVES = [
    "4242 4242 4242 4241",  # fails Luhn
    "1234567890123456",  # fails Luhn
    "123e4567-e89b-12d3-a456-426614174000",  # UUID
    "3f786850e387550fdab836ed7e6dc881de23001b",  # git SHA
    "2024-01-15T12:30:45Z",  # timestamp
    "12:30:45",
    "2024-01-15",
    "$1,299.99",
    "order 12345678",
    "4155552671",  # a bare digit run is an ID, not a phone
    "version 1.2.3",
    "v2.10.1",
    "@decorator",
    "image@2x.png",
    "000-12-3456",  # impossible SSN area
    "DE00 3704 0044 0532 0130 00",  # fails the IBAN checksum
    "999.1.1.1",  # octet out of range
    "sk-short",
    "the answer is 42",
]


@pytest.mark.parametrize(("entity", "value"), POSITIVES, ids=lambda p: str(p))
def test_positive_is_redacted_with_its_entity(entity: Entity, value: str) -> None:
    assert PLACEHOLDER.redact(f"before {value} after") == f"before [{entity.value}] after"


@pytest.mark.parametrize(("text", "redacted"), IN_CONTEXT)
def test_values_next_to_other_text_are_redacted(text: str, redacted: str) -> None:
    assert PLACEHOLDER.redact(text) == redacted


@pytest.mark.parametrize("text", NEGATIVES)
def test_hard_negative_survives(text: str) -> None:
    assert PLACEHOLDER.redact(text) == text


@pytest.mark.parametrize(("entity", "value"), POSITIVES, ids=lambda p: str(p))
def test_each_detector_is_independent(entity: Entity, value: str) -> None:
    others = Redactor(Replacer("placeholder"), [e for e in Entity if e is not entity])
    only = Redactor(Replacer("placeholder"), [entity])
    assert only.redact(value) == f"[{entity.value}]"
    assert others.redact(value) != f"[{entity.value}]"
