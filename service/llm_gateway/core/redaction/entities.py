"""The kinds of personal data and secrets the gateway redacts."""

from __future__ import annotations

import enum

__all__ = ["Entity"]


class Entity(enum.Enum):
    """A detectable entity; the value is its name in settings, metrics and placeholders."""

    EMAIL = "EMAIL"
    CREDIT_CARD = "CREDIT_CARD"
    PHONE = "PHONE"
    US_SSN = "US_SSN"
    IBAN = "IBAN"
    IP_ADDRESS = "IP_ADDRESS"
    SECRET = "SECRET"
