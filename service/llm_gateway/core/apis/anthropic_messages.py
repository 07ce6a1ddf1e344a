"""Anthropic Messages: ``POST /v1/messages``.

Input: ``messages``, a non-empty array. Model text: ``system`` (a string or text blocks), message
``content`` (a string or blocks: ``text`` blocks, ``document`` blocks with a text or content source,
``tool_result`` and ``search_result`` blocks whose ``content`` is text or blocks, ``tool_use``
blocks whose ``input`` is JSON, citations' ``cited_text``); in answers, the ``text``, ``input`` and
citations of ``content`` blocks. Streams are typed events: ``content_block_delta`` carries a
``text_delta``, ``input_json_delta`` (partial JSON) or ``thinking_delta`` of the block at its
``index``, which ``content_block_stop`` closes; ``message_start`` brings the input token count,
``message_delta`` the output count, ``message_stop`` ends it. Errors are ``{"type": "error",
"error": {"type", "message"}}``, mid-stream as an ``event: error``; 429s also carry
``anthropic-ratelimit-requests-*`` (and ``-tokens-*`` under a token budget); an upstream 529
(overloaded) reaches the SDK, which retries it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from llm_gateway.core.apis.description import InputRule, WireAPI
from llm_gateway.core.redaction.events import DeltaEvent, EventLocations
from llm_gateway.core.redaction.locations import TextLocations
from llm_gateway.core.sse import SSEEvent
from llm_gateway.core.token_budget import NO_OUTPUT, OutputLimits
from llm_gateway.core.usage import UsageFields
from llm_gateway.errors import GatewayError

__all__ = ["COUNT_TOKENS", "MESSAGES", "STREAM_LOCATIONS"]

_BLOCK = ("index",)
_DELTA_TYPE = ("delta", "type")
STREAM_LOCATIONS = EventLocations(
    deltas=(
        DeltaEvent("content_block_delta", _BLOCK, ("delta", "text"), when=(_DELTA_TYPE, "text_delta")),
        DeltaEvent(
            "content_block_delta", _BLOCK, ("delta", "thinking"), when=(_DELTA_TYPE, "thinking_delta")
        ),
        DeltaEvent(
            "content_block_delta",
            _BLOCK,
            ("delta", "partial_json"),
            when=(_DELTA_TYPE, "input_json_delta"),
            json=True,
        ),
    ),
    closing=(("content_block_stop", _BLOCK),),
    summary_text=(
        ("message_start", (("message", "content", "*", "text"),)),
        (
            "content_block_start",
            (("content_block", "text"), ("content_block", "citations", "*", "cited_text")),
        ),
        ("content_block_delta", (("delta", "citation", "cited_text"),)),
    ),
    summary_json=(
        ("message_start", (("message", "content", "*", "input"),)),
        ("content_block_start", (("content_block", "input"),)),
    ),
    final=("message_stop",),
)

#: Anthropic's error types by status (others: ``api_error``).
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def _error_body(error: GatewayError) -> bytes:
    kind = _ERROR_TYPES.get(error.status, "api_error")
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": error.message}})


def _non_empty_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value)


def _is_last(event: SSEEvent) -> bool:
    return event.field(b"event") == b"message_stop"


_CONTENT = ("messages", "*", "content")
#: Prompt tokens Anthropic counts apart from ``input_tokens``: its input is the sum.
_CACHED_INPUT = ("cache_creation_input_tokens", "cache_read_input_tokens")
MESSAGES = WireAPI(
    route="/v1/messages",
    family="anthropic",
    operation_id="createMessage",
    summary="Create a message (Anthropic)",
    upstream_path="/messages",
    operation="chat",
    action="messages",
    system="anthropic",
    input=InputRule(
        "messages",
        _non_empty_list,
        "a non-empty array",
        {"type": "array", "minItems": 1, "items": {"type": "object"}},
    ),
    locations=TextLocations(
        request_text=(
            ("system",),
            _CONTENT,
            (*_CONTENT, "*", "content"),  # tool results and search results: text, or text blocks
            (*_CONTENT, "*", "citations", "*", "cited_text"),
        ),
        request_json=((*_CONTENT, "*", "input"),),
        outputs="content",
        response_text=(("text",), ("thinking",), ("citations", "*", "cited_text")),
        response_json=(("input",),),
        response_logprobs=(),
        stream=(),
        stream_choice=(),
    ),
    usage=UsageFields("input_tokens", "output_tokens", input_extra=_CACHED_INPUT),
    stream_usage=(
        UsageFields("input_tokens", None, container=("message", "usage"), input_extra=_CACHED_INPUT),
        UsageFields(None, "output_tokens"),
    ),
    streams=True,
    stream_events=STREAM_LOCATIONS,
    output_limits=OutputLimits(("max_tokens",), "max_tokens"),
    ends_stream=_is_last,
    error_body=_error_body,
    error_event_name=b"error",
    passed_statuses=frozenset({529}),
    limit_header_aliases=(
        (b"x-ratelimit-limit-requests", b"anthropic-ratelimit-requests-limit"),
        (b"x-ratelimit-remaining-requests", b"anthropic-ratelimit-requests-remaining"),
        (b"x-ratelimit-limit-tokens", b"anthropic-ratelimit-tokens-limit"),
        (b"x-ratelimit-remaining-tokens", b"anthropic-ratelimit-tokens-remaining"),
    ),
)

#: ``POST /v1/messages/count_tokens``: a Messages request without ``max_tokens``, answered with
#: ``{"input_tokens": N}``. Its text leaves the gateway like a message's, so it is redacted the same
#: way; it is admitted like one too (quota and rate limit): it costs the upstream nothing, but the
#: gateway its redaction.
COUNT_TOKENS = replace(
    MESSAGES,
    route="/v1/messages/count_tokens",
    operation_id="countMessageTokens",
    summary="Count the tokens of a message (Anthropic)",
    upstream_path="/messages/count_tokens",
    operation="count_tokens",
    action="count_tokens",
    usage=None,
    stream_usage=(),
    output_limits=NO_OUTPUT,
    streams=False,
)
