"""OpenAI Responses: ``POST /v1/responses``.

Input: ``input``, a string or an array of input items (messages whose ``content`` is a string or
``input_text`` parts, tool outputs, earlier tool calls, reasoning items); absent when a request
continues a stored conversation. Model text: the input's texts and reasoning summaries,
``instructions``, tool-call ``arguments`` (JSON text), custom tool inputs, prompt template
``variables``; in answers, the text of ``output`` items: ``output_text``, ``refusal`` and
``reasoning_text`` parts, reasoning ``summary`` parts, custom tool ``input``, function
``arguments``. Streams are typed events (a ``*.delta`` per fragment of each of those, the
``*.done`` events repeating the text whole, ``response.completed`` with the whole response and
its ``usage``); usage comes unasked. Log probabilities (``top_logprobs``, or ``include`` naming
``message.output_text.logprobs``) spell the text token by token where the redactor cannot follow,
so they are refused while redacting.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.core.apis.description import InputRule, WireAPI
from llm_gateway.core.redaction.events import DeltaEvent, EventLocations
from llm_gateway.core.redaction.locations import TextLocations
from llm_gateway.core.sse import SSEEvent
from llm_gateway.core.token_budget import OutputLimits
from llm_gateway.core.usage import UsageFields

__all__ = ["RESPONSES", "STREAM_LOCATIONS"]

_PART = ("item_id", "content_index")
_SUMMARY = ("item_id", "summary_index")
_WHOLE = ("response.completed", "response.incomplete", "response.failed")
#: Where a whole response's output items hold text: message and reasoning content parts, reasoning
#: summaries, custom tool inputs.
_OUTPUT_TEXT = (("content",), ("summary",), ("input",))
STREAM_LOCATIONS = EventLocations(
    deltas=(
        DeltaEvent("response.output_text.delta", _PART, ("delta",)),
        DeltaEvent("response.refusal.delta", _PART, ("delta",)),
        DeltaEvent("response.reasoning_text.delta", _PART, ("delta",)),
        DeltaEvent("response.reasoning_summary_text.delta", _SUMMARY, ("delta",)),
        DeltaEvent("response.custom_tool_call_input.delta", ("item_id",), ("delta",)),
        DeltaEvent("response.function_call_arguments.delta", ("item_id",), ("delta",), json=True),
    ),
    closing=(
        ("response.output_text.done", _PART),
        ("response.refusal.done", _PART),
        ("response.reasoning_text.done", _PART),
        ("response.reasoning_summary_text.done", _SUMMARY),
        ("response.custom_tool_call_input.done", ("item_id",)),
        ("response.function_call_arguments.done", ("item_id",)),
    ),
    summary_text=(
        ("response.output_text.done", (("text",),)),
        ("response.refusal.done", (("refusal",),)),
        ("response.reasoning_text.done", (("text",),)),
        ("response.reasoning_summary_text.done", (("text",),)),
        ("response.reasoning_summary_part.added", (("part", "text"),)),
        ("response.reasoning_summary_part.done", (("part", "text"),)),
        ("response.custom_tool_call_input.done", (("input",),)),
        ("response.content_part.added", (("part", "text"), ("part", "refusal"))),
        ("response.content_part.done", (("part", "text"), ("part", "refusal"))),
        ("response.output_item.added", tuple(("item", *path) for path in _OUTPUT_TEXT)),
        ("response.output_item.done", tuple(("item", *path) for path in _OUTPUT_TEXT)),
        *((kind, tuple(("response", "output", "*", *path) for path in _OUTPUT_TEXT)) for kind in _WHOLE),
    ),
    summary_json=(
        ("response.function_call_arguments.done", (("arguments",),)),
        ("response.output_item.done", (("item", "arguments"),)),
        *((kind, (("response", "output", "*", "arguments"),)) for kind in _WHOLE),
    ),
    final=_WHOLE,
)

#: The events after which the SDK reads no more.
_LAST_EVENTS = frozenset({b"response.completed", b"response.incomplete", b"response.failed"})


def _input(value: Any) -> bool:
    return value is None or isinstance(value, (str, list))


def _is_last(event: SSEEvent) -> bool:
    return event.field(b"event") in _LAST_EVENTS


def _asks_for_logprobs(payload: dict[str, Any]) -> str | None:
    if payload.get("top_logprobs") not in (None, False, 0):
        return "top_logprobs"
    include = payload.get("include")
    if isinstance(include, list) and "message.output_text.logprobs" in include:
        return "include"
    return None


RESPONSES = WireAPI(
    route="/v1/responses",
    family="openai",
    operation_id="createResponse",
    summary="Create a model response",
    upstream_path="/responses",
    operation="chat",
    action="responses",
    system="openai",
    input=InputRule(
        "input",
        _input,
        "a string or an array of input items, when present",
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        required=False,
    ),
    locations=TextLocations(
        request_text=(
            ("input",),
            ("instructions",),
            *(("input", "*", field) for field in ("content", "output", "summary", "input")),
        ),
        # Prompt template variables: every string in them.
        request_json=(("input", "*", "arguments"), ("prompt", "variables")),
        outputs="output",
        response_text=_OUTPUT_TEXT,
        response_json=(("arguments",),),
        response_logprobs=(),
        stream=(),
        stream_choice=(),
    ),
    usage=UsageFields("input_tokens", "output_tokens"),
    stream_usage=(UsageFields("input_tokens", "output_tokens", container=("response", "usage")),),
    streams=True,
    stream_events=STREAM_LOCATIONS,
    output_limits=OutputLimits(("max_output_tokens",), "max_output_tokens"),
    ends_stream=_is_last,
    unredactable=_asks_for_logprobs,
)
