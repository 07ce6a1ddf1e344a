"""OpenAI Responses: ``POST /v1/responses``.

Input: ``input``, a string or an array of input items (messages whose ``content`` is a string or
``input_text`` parts, tool outputs, earlier tool calls); absent when a request continues a stored
conversation. Model text: the input's texts, ``instructions``, tool-call ``arguments`` (JSON text);
in answers, the ``output_text`` parts and ``arguments`` of ``output`` items. Streams are typed
events (``response.output_text.delta`` per fragment, ``response.output_text.done`` and the other
``*.done`` events repeating the text whole, ``response.completed`` with the whole response and its
``usage``); usage comes unasked. Log probabilities (``top_logprobs``, or ``include`` naming
``message.output_text.logprobs``) spell the text token by token where the redactor cannot follow,
so they are refused while redacting.
"""

from __future__ import annotations

from typing import Any

from llm_gateway.core.apis.description import InputRule, WireAPI
from llm_gateway.core.redaction import Redactor
from llm_gateway.core.redaction.events import DeltaEvent, EventLocations, EventRedactor
from llm_gateway.core.redaction.locations import TextLocations
from llm_gateway.core.sse import SSEEvent
from llm_gateway.core.usage import UsageFields

__all__ = ["RESPONSES", "STREAM_LOCATIONS"]

_PART = ("item_id", "content_index")
STREAM_LOCATIONS = EventLocations(
    deltas=(
        DeltaEvent("response.output_text.delta", _PART, ("delta",)),
        DeltaEvent("response.refusal.delta", _PART, ("delta",)),
        DeltaEvent("response.function_call_arguments.delta", ("item_id",), ("delta",), json=True),
    ),
    closing=(
        ("response.output_text.done", _PART),
        ("response.refusal.done", _PART),
        ("response.function_call_arguments.done", ("item_id",)),
    ),
    summary_text=(
        ("response.output_text.done", (("text",),)),
        ("response.refusal.done", (("refusal",),)),
        ("response.content_part.done", (("part", "text"), ("part", "refusal"))),
        ("response.output_item.done", (("item", "content"),)),
        ("response.completed", (("response", "output", "*", "content"),)),
        ("response.incomplete", (("response", "output", "*", "content"),)),
        ("response.failed", (("response", "output", "*", "content"),)),
    ),
    summary_json=(
        ("response.function_call_arguments.done", (("arguments",),)),
        ("response.output_item.done", (("item", "arguments"),)),
        ("response.completed", (("response", "output", "*", "arguments"),)),
        ("response.incomplete", (("response", "output", "*", "arguments"),)),
        ("response.failed", (("response", "output", "*", "arguments"),)),
    ),
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


def _stream_redaction(redactor: Redactor) -> EventRedactor:
    return EventRedactor(redactor, STREAM_LOCATIONS)


RESPONSES = WireAPI(
    route="/v1/responses",
    family="openai",
    operation_id="createResponse",
    summary="Create a model response",
    upstream_path="/responses",
    operation="chat",
    system="openai",
    input=InputRule(
        "input",
        _input,
        "a string or an array of input items, when present",
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        required=False,
    ),
    locations=TextLocations(
        request_text=(("input",), ("input", "*", "content"), ("input", "*", "output"), ("instructions",)),
        request_json=(("input", "*", "arguments"),),
        outputs="output",
        response_text=(("content",),),
        response_json=(("arguments",),),
        response_logprobs=(),
        stream=(),
        stream_choice=(),
    ),
    usage=UsageFields("input_tokens", "output_tokens"),
    stream_usage=(UsageFields("input_tokens", "output_tokens", container=("response", "usage")),),
    streams=True,
    stream_redaction=_stream_redaction,
    ends_stream=_is_last,
    unredactable=_asks_for_logprobs,
)
