"""PII and secret redaction (pure): detectors, the engine, where model text lives, and the payloads."""

from llm_gateway.core.redaction.detectors import DEFAULT_PHONE_REGIONS
from llm_gateway.core.redaction.engine import Redactor, StreamRedactor
from llm_gateway.core.redaction.entities import Entity
from llm_gateway.core.redaction.locations import TextLocations
from llm_gateway.core.redaction.payloads import (
    SSERedactor,
    redact_json_text,
    redact_request,
    redact_response,
)
from llm_gateway.core.redaction.replacement import Mode, Replacer

__all__ = [
    "DEFAULT_PHONE_REGIONS",
    "Entity",
    "Mode",
    "Redactor",
    "Replacer",
    "SSERedactor",
    "StreamRedactor",
    "TextLocations",
    "redact_json_text",
    "redact_request",
    "redact_response",
]
