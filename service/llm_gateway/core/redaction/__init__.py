"""PII and secret redaction (pure): detectors, the engine, where model text lives, and the payloads."""

from llm_gateway.core.redaction.detectors import DEFAULT_PHONE_REGIONS
from llm_gateway.core.redaction.engine import Redactor, StreamRedactor
from llm_gateway.core.redaction.entities import Entity
from llm_gateway.core.redaction.locations import OPENAI_CHAT, TextLocations
from llm_gateway.core.redaction.payloads import (
    SSERedactor,
    redact_completion,
    redact_json_text,
    redact_request,
)
from llm_gateway.core.redaction.replacement import Mode, Replacer

__all__ = [
    "DEFAULT_PHONE_REGIONS",
    "OPENAI_CHAT",
    "Entity",
    "Mode",
    "Redactor",
    "Replacer",
    "SSERedactor",
    "StreamRedactor",
    "TextLocations",
    "redact_completion",
    "redact_json_text",
    "redact_request",
]
