"""OpenAI Chat Completions: ``POST /v1/chat/completions``.

Input: ``messages``, a non-empty array. Model text: message ``content`` and ``refusal`` (strings or
content parts) and tool-call ``arguments`` (JSON text), in requests, in ``choices[].message`` and in
streamed ``choices[].delta``. Usage: ``usage.prompt_tokens`` / ``usage.completion_tokens``.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.core.apis.description import InputRule, WireAPI
from llm_gateway.core.apis.openai_streams import ask_for_stream_usage, is_done
from llm_gateway.core.redaction.locations import StreamChannel, TextLocations
from llm_gateway.core.token_budget import OutputLimits
from llm_gateway.core.usage import UsageFields

__all__ = ["CHAT_COMPLETIONS", "LOCATIONS"]

LOCATIONS = TextLocations(
    request_text=(("messages", "*", "content"), ("messages", "*", "refusal")),
    request_json=(
        ("messages", "*", "tool_calls", "*", "function", "arguments"),
        ("messages", "*", "function_call", "arguments"),
    ),
    outputs="choices",
    response_text=(("message", "content"), ("message", "refusal")),
    response_json=(
        ("message", "tool_calls", "*", "function", "arguments"),
        ("message", "function_call", "arguments"),
    ),
    response_logprobs=(
        (("logprobs", "content"), ("message", "content")),
        (("logprobs", "refusal"), ("message", "refusal")),
    ),
    stream=(
        StreamChannel(("delta", "content"), logprobs=("logprobs", "content")),
        StreamChannel(("delta", "refusal"), logprobs=("logprobs", "refusal")),
        StreamChannel(("delta", "tool_calls", "*", "function", "arguments"), json=True),
        StreamChannel(("delta", "function_call", "arguments"), json=True),
    ),
    stream_choice=("delta",),
)


def _non_empty_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value)


_MESSAGES_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {"type": "string", "description": "system, developer, user, assistant or tool"},
            "content": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "object"}},
                    {"type": "null"},
                ],
                "description": 'Text, or content parts (`{"type": "text", "text": ...}`).',
            },
        },
    },
}

CHAT_COMPLETIONS = WireAPI(
    route="/v1/chat/completions",
    family="openai",
    operation_id="createChatCompletion",
    summary="Create a chat completion",
    upstream_path="/chat/completions",
    operation="chat",
    action="chat",
    system="openai",
    input=InputRule("messages", _non_empty_list, "a non-empty array", _MESSAGES_SCHEMA),
    locations=LOCATIONS,
    usage=UsageFields("prompt_tokens", "completion_tokens"),
    streams=True,
    ask_for_stream_usage=ask_for_stream_usage,
    ends_stream=is_done,
    # `max_completion_tokens` is what OpenAI reads for every model (`max_tokens` is refused by its
    # reasoning models); OpenAI-compatible servers read it too.
    output_limits=OutputLimits(("max_completion_tokens", "max_tokens"), "max_completion_tokens", ("n",)),
)
