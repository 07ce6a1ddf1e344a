"""OpenAI Embeddings: ``POST /v1/embeddings``.

Input: ``input``, a string, an array of strings, or token arrays (which carry no text to redact).
The answer is vectors: no model text, nothing streamed. Usage: ``usage.prompt_tokens``; an
embedding produces no output tokens.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.core.apis.description import InputRule, WireAPI
from llm_gateway.core.redaction.locations import TextLocations
from llm_gateway.core.usage import UsageFields

__all__ = ["EMBEDDINGS"]


def _input(value: Any) -> bool:
    return (isinstance(value, str) and bool(value)) or (isinstance(value, list) and bool(value))


_TOKENS = {"type": "array", "minItems": 1, "items": {"type": "integer"}}
_INPUT_SCHEMA = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "array",
            "minItems": 1,
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}, _TOKENS]},
        },
    ]
}

EMBEDDINGS = WireAPI(
    route="/v1/embeddings",
    family="openai",
    operation_id="createEmbedding",
    summary="Create embeddings",
    upstream_path="/embeddings",
    operation="embeddings",
    action="embeddings",
    system="openai",
    input=InputRule(
        "input", _input, "a non-empty string, or a non-empty array of strings or token arrays", _INPUT_SCHEMA
    ),
    locations=TextLocations(
        request_text=(("input",), ("input", "*")),
        request_json=(),
        outputs="data",
        response_text=(),
        response_json=(),
        response_logprobs=(),
        stream=(),
        stream_choice=(),
    ),
    usage=UsageFields("prompt_tokens", None),
    streams=False,
)
