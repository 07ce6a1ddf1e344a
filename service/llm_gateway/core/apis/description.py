"""What the pipeline needs to know about one wire API, said without I/O.

The endpoint in :mod:`llm_gateway.api.endpoint` runs the same steps for every API (shed → read →
validate → identify → route → admit → redact → forward → relay → record); a :class:`WireAPI` supplies what
differs: where the request's input is and how it is checked, where model text lives (for the
redactor), where usage is counted, how a stream asks for usage and says it is over, how a gateway
error looks, and the GenAI names its telemetry carries. One module per API in this package holds
one instance; adding an API is adding such a module and one route line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llm_gateway.core.redaction import Entity, Redactor, SSERedactor, TextLocations
from llm_gateway.core.redaction.events import EventLocations, EventRedactor
from llm_gateway.core.routing import ApiFamily
from llm_gateway.core.sse import SSEEvent, format_event
from llm_gateway.core.token_budget import NO_OUTPUT, OutputLimits, StreamBudget
from llm_gateway.core.usage import UsageFields
from llm_gateway.errors import GatewayError

__all__ = ["InputRule", "StreamRedaction", "WireAPI"]


@dataclass(frozen=True, slots=True)
class InputRule:
    """The one field a request of the API must carry (besides ``model``), and what it must hold.

    ``accepts(value)`` is given the field's value (absent: ``None``); ``says`` completes the error
    message "'<field>' is required and must be <says>" ("'<field>' must be <says>" when not
    ``required``); ``schema`` is the same rule as JSON Schema, for the OpenAPI document (which
    should accept exactly what ``accepts`` does).
    """

    field: str
    accepts: Callable[[Any], bool]
    says: str
    schema: Mapping[str, Any]
    required: bool = True

    def message(self) -> str:
        """The error message for a value ``accepts`` refused."""
        return f"'{self.field}' {'is required and must' if self.required else 'must'} be {self.says}"


class StreamRedaction(Protocol):
    """What redacts a stream for the relay: ``process`` the events of one read (returns those to
    send), ``finish`` at the end (returns the events with text still held), ``found`` counts."""

    found: Counter[Entity]

    def process(self, events: list[SSEEvent]) -> list[SSEEvent]: ...

    def finish(self) -> list[SSEEvent]: ...


def _openai_error(error: GatewayError) -> bytes:
    return error.body()


@dataclass(frozen=True, slots=True)
class WireAPI:
    """One wire API as the pipeline sees it.

    ``route`` is the gateway's path; ``upstream_path`` is appended to the upstream's base URL;
    ``family`` is the kind of upstream that speaks it (see :mod:`llm_gateway.core.routing`). ``usage``
    is where a whole answer's usage is, ``stream_usage`` where stream events carry it (unset: the same
    place). ``stream_events`` says where a stream of typed events carries text (unset: the streamed
    choices of ``locations``). ``output_limits``: the request fields that bound its output tokens
    (see :mod:`llm_gateway.core.token_budget`).
    ``streams``: whether ``"stream": true`` is read (an API without streams forwards the field, unread,
    for its upstream to judge). ``ask_for_stream_usage(payload)`` makes a streamed request ask for its
    usage (in place) and says whether the client had asked itself; None when the API reports a stream's
    usage unasked. ``ends_stream(event)``: the event after which a client reads no more. ``error_body``
    renders a gateway error (answers and mid-stream error events). ``unredactable(payload)`` names the
    request field that would have model text returned where the redactor cannot follow it (token log
    probabilities), or None; with redaction on such a request is refused. ``operation`` and ``system``
    are the ``gen_ai.operation.name`` and ``gen_ai.system`` of the OTel GenAI conventions; ``action`` is
    the Cedar action tenant policies name it by (see :mod:`llm_gateway.core.policy.schema`);
    ``operation_id`` and ``summary`` name the operation in the OpenAPI document (as the provider's own
    document does). ``error_event_name`` is the ``event:`` of a mid-stream error event (None: a
    ``data:`` line alone); ``passed_statuses`` are upstream 5xx statuses relayed as they came (not as
    a 502) because the API's clients act on them; ``limit_header_aliases`` add the API's own names
    for the ``x-ratelimit-*`` headers. ``usage`` None: the API's answers use no tokens (counting
    them).
    """

    route: str
    family: ApiFamily
    operation_id: str
    summary: str
    upstream_path: str
    operation: str
    system: str
    action: str
    input: InputRule
    locations: TextLocations
    usage: UsageFields | None
    streams: bool
    stream_usage: tuple[UsageFields, ...] = ()
    stream_events: EventLocations | None = None
    output_limits: OutputLimits = NO_OUTPUT
    ask_for_stream_usage: Callable[[dict[str, Any]], bool] | None = None
    ends_stream: Callable[[SSEEvent], bool] = field(default=lambda _: False)
    error_body: Callable[[GatewayError], bytes] = _openai_error
    unredactable: Callable[[dict[str, Any]], str | None] = field(default=lambda _: None)
    error_event_name: bytes | None = None
    passed_statuses: frozenset[int] = frozenset()
    limit_header_aliases: tuple[tuple[bytes, bytes], ...] = ()

    def usage_in_streams(self) -> tuple[UsageFields, ...]:
        return self.stream_usage or ((self.usage,) if self.usage is not None else ())

    def redact_stream(self, redactor: Redactor) -> StreamRedaction:
        """A new stream redactor for one response."""
        if self.stream_events is not None:
            return EventRedactor(redactor, self.stream_events)
        return SSERedactor(redactor, self.locations)

    def stream_budget(self, reserved_output: int) -> StreamBudget:
        """A new output-fragment counter for one stream that may carry ``reserved_output`` of them."""
        return StreamBudget(reserved_output, self.locations, self.stream_events)

    def error_event(self, error: GatewayError) -> bytes:
        """The SSE event that ends a stream the gateway could not finish."""
        event = format_event(self.error_body(error))
        return event if self.error_event_name is None else b"event: " + self.error_event_name + b"\n" + event

    def limit_headers(self, headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """``headers`` (the ``x-ratelimit-*`` of a decision) with the API's own names added."""
        if not self.limit_header_aliases:
            return list(headers) if not isinstance(headers, list) else headers
        return [*headers, *self.limit_header_copies(headers)]

    def limit_header_copies(self, headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The API's own names for the ``x-ratelimit-*`` among ``headers``, with their values."""
        if not self.limit_header_aliases:
            return []
        aliases = dict(self.limit_header_aliases)
        return [(aliases[name], value) for name, value in headers if name in aliases]
