"""OpenAI Completions (legacy): ``POST /v1/completions``.

Input: ``prompt``, a string, an array of strings, or token arrays (which carry no text to redact).
Model text: the prompt and ``suffix``, ``choices[].text`` in answers and in streamed chunks. Usage
as chat completions, asked for in streams the same way. Its ``logprobs`` list tokens as parallel
arrays that spell the text token by token; with redaction on they are refused rather than passed.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.core.apis.description import InputRule, WireAPI
from llm_gateway.core.apis.openai_streams import ask_for_stream_usage, is_done
from llm_gateway.core.redaction.locations import StreamChannel, TextLocations
from llm_gateway.core.token_budget import OutputLimits
from llm_gateway.core.usage import UsageFields

__all__ = ["COMPLETIONS"]


def _prompt(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and bool(value))


_TOKENS = {"type": "array", "minItems": 1, "items": {"type": "integer"}}
_PROMPT_SCHEMA = {
    "anyOf": [
        {"type": "string"},
        {
            "type": "array",
            "minItems": 1,
            "items": {"anyOf": [{"type": "string"}, {"type": "integer"}, _TOKENS]},
        },
    ]
}


def _asks_for_logprobs(payload: dict[str, Any]) -> str | None:
    return "logprobs" if payload.get("logprobs") not in (None, False, 0) else None


COMPLETIONS = WireAPI(
    route="/v1/completions",
    family="openai",
    operation_id="createCompletion",
    summary="Create a completion (legacy)",
    upstream_path="/completions",
    operation="text_completion",
    action="completions",
    system="openai",
    input=InputRule(
        "prompt", _prompt, "a string, or a non-empty array of strings or token arrays", _PROMPT_SCHEMA
    ),
    locations=TextLocations(
        request_text=(("prompt",), ("prompt", "*"), ("suffix",)),
        request_json=(),
        outputs="choices",
        response_text=(("text",),),
        response_json=(),
        response_logprobs=(),
        stream=(StreamChannel(("text",)),),
        stream_choice=(),
    ),
    usage=UsageFields("prompt_tokens", "completion_tokens"),
    streams=True,
    ask_for_stream_usage=ask_for_stream_usage,
    ends_stream=is_done,
    # Unset, `max_tokens` is 16 in this API; each prompt of a list gets its own `n` (or `best_of`)
    # answers.
    output_limits=OutputLimits(("max_tokens",), "max_tokens", ("n", "best_of"), default=16, prompts="prompt"),
    unredactable=_asks_for_logprobs,
)
