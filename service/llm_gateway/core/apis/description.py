"""What the pipeline needs to know about one wire API, said without I/O.

The endpoint in :mod:`llm_gateway.api.endpoint` runs the same steps for every API (shed → read →
validate → identify → admit → redact → forward → relay → record); a :class:`WireAPI` supplies what
differs: where the request's input is and how it is checked, where model text lives (for the
redactor), where usage is counted, how a stream asks for usage and says it is over, how a gateway
error looks, and the GenAI names its telemetry carries. One module per API in this package holds
one instance; adding an API is adding such a module and one route line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.core.redaction.locations import TextLocations
from llm_gateway.core.sse import SSEEvent
from llm_gateway.core.usage import UsageFields
from llm_gateway.errors import GatewayError

__all__ = ["InputRule", "WireAPI"]


@dataclass(frozen=True, slots=True)
class InputRule:
    """The one field a request of the API must carry (besides ``model``), and what it must hold.

    ``accepts(value)`` is given the field's value (absent: ``None``); ``says`` completes the error
    message "'<field>' is required: <says>"; ``schema`` is the same rule as JSON Schema, for the
    OpenAPI document (which should accept exactly what ``accepts`` does).
    """

    field: str
    accepts: Callable[[Any], bool]
    says: str
    schema: Mapping[str, Any]


def _openai_error(error: GatewayError) -> bytes:
    return error.body()


@dataclass(frozen=True, slots=True)
class WireAPI:
    """One wire API as the pipeline sees it.

    ``route`` is the gateway's path; ``upstream_path`` is appended to the upstream's base URL.
    ``streams``: whether ``"stream": true`` is read (an API without streams forwards the field,
    unread, for its upstream to judge). ``ask_for_stream_usage(payload)`` makes a streamed request ask
    for its usage (in place) and says whether the client had asked itself; None when the API reports
    a stream's usage unasked. ``ends_stream(event)``: the event after which a client reads no more.
    ``error_body`` renders a gateway error (answers and mid-stream error events).
    ``unredactable``: request fields that, set, would return model text where the redactor cannot
    follow it (legacy completions' token ``logprobs``); with redaction on they are refused. ``operation`` and
    ``system`` are the ``gen_ai.operation.name`` and ``gen_ai.system`` of the OTel GenAI conventions;
    ``operation_id`` and ``summary`` name the operation in the OpenAPI document (as the provider's
    own document does).
    """

    route: str
    operation_id: str
    summary: str
    upstream_path: str
    operation: str
    system: str
    input: InputRule
    locations: TextLocations
    usage: UsageFields
    streams: bool
    ask_for_stream_usage: Callable[[dict[str, Any]], bool] | None = None
    ends_stream: Callable[[SSEEvent], bool] = field(default=lambda _: False)
    error_body: Callable[[GatewayError], bytes] = _openai_error
    unredactable: tuple[str, ...] = ()
