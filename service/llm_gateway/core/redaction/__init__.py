"""PII and secret redaction (pure): detectors, the engine, and the JSON/SSE payloads it applies to."""

from llm_gateway.core.redaction.engine import Redactor, StreamRedactor
from llm_gateway.core.redaction.entities import Entity
from llm_gateway.core.redaction.payloads import SSERedactor, redact_completion, redact_messages
from llm_gateway.core.redaction.replacement import Mode, Replacer

__all__ = [
    "Entity",
    "Mode",
    "Redactor",
    "Replacer",
    "SSERedactor",
    "StreamRedactor",
    "redact_completion",
    "redact_messages",
]
