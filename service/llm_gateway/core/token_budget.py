"""Token budgets (pure): what a request reserves, what it is charged, and where a stream must stop.

A tenant's token budget is a number of tokens per window: ``total`` (input + output), and/or
``input`` and ``output`` apart. A request is admitted only if an upper bound of what it can cost
fits in what is left, and that bound is *reserved* at once, in the same atomic step as the request
quota (see :mod:`llm_gateway.core.quota`). When the request ends it is *settled*: charged what the
upstream reported (or, lacking a report, what the gateway saw delivered) and the rest of the
reservation returned. So the sum of what admitted requests can cost never exceeds the budget.

The bound, per request:

- **input**: the request body's size in bytes. Byte-level BPE tokenizers (OpenAI's, Anthropic's)
  turn every token into at least one byte of text, and the body holds the text and more (JSON
  syntax, tool schemas, which count as input tokens too). Not a bound for media referenced by URL
  (an ``image_url`` costs tokens by its pixels, not its bytes): documented, not enforced.
- **output**: the request's own output limit (``max_tokens``, ``max_completion_tokens``,
  ``max_output_tokens``, whichever the API reads; the largest when several are set) times the
  number of choices asked for (``n``, ``best_of``), or, when it sets none, the tenant's
  ``output_cap``, which the gateway then writes into the request so that the upstream
  itself stops there (see :attr:`OutputLimits.field`).

A stream is also watched: its output fragments (one per non-empty text delta, as the APIs stream
about a token each) are counted, and the stream is cut before the fragment that would pass the
reserved output (:class:`StreamBudget`), for an upstream that ignores the output limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from llm_gateway.core.redaction.events import EventLocations
from llm_gateway.core.redaction.locations import Path, TextLocations
from llm_gateway.core.sse import SSEEvent
from llm_gateway.core.usage import Usage

__all__ = [
    "MAX_TOKENS",
    "NO_LIMIT",
    "NO_OUTPUT",
    "OutputLimits",
    "Reservation",
    "Shortfall",
    "StreamBudget",
    "TokenLimits",
    "charge",
    "read_limit",
    "reserve",
]

#: How a limit that does not apply travels to the admission script.
NO_LIMIT = -1
#: The most tokens one count may hold: far beyond any budget, and an integer Redis's ``HINCRBY`` and
#: Lua's doubles both hold exactly, so no request's ``max_tokens`` or ``n`` and no upstream's usage
#: can make a script fail (which would take the store out of service for every tenant).
MAX_TOKENS = 2**48


@dataclass(frozen=True, slots=True)
class TokenLimits:
    """A tenant's token budget: tokens per ``window_secs`` in ``total`` (input + output), ``input``,
    ``output`` (None: that limit does not apply; at least one does), and ``output_cap``, what a
    request naming no output limit reserves (and is limited to)."""

    total: int | None
    input: int | None
    output: int | None
    window_secs: int
    output_cap: int

    def divided(self, replicas: int) -> TokenLimits:
        """This replica's share when ``replicas`` enforce independently (rounded up, see
        :meth:`llm_gateway.core.quota.Limits.divided`)."""
        if replicas <= 1:
            return self

        def part(limit: int | None) -> int | None:
            return None if limit is None else -(-limit // replicas)

        return TokenLimits(
            part(self.total), part(self.input), part(self.output), self.window_secs, self.output_cap
        )

    def script_args(self) -> tuple[int, int, int, int]:
        """``total, input, output`` (``NO_LIMIT`` where unset) and the window in ms."""
        return (
            NO_LIMIT if self.total is None else self.total,
            NO_LIMIT if self.input is None else self.input,
            NO_LIMIT if self.output is None else self.output,
            self.window_secs * 1000,
        )

    def remaining(self, used_input: int, used_output: int) -> tuple[int, int]:
        """``(limit, remaining)`` of the limit with the least room left after ``used_*`` tokens (what
        the ``x-ratelimit-*-tokens`` headers report)."""
        _, limit, used, _ = min(
            self._limits(used_input, used_output, _NOTHING), key=lambda each: each[1] - each[2]
        )
        return limit, max(limit - used, 0)

    def admits(self, used_input: int, used_output: int, reservation: Reservation) -> bool:
        """Whether ``reservation`` fits beside ``used_*`` tokens (the admission script's test)."""
        return self.shortfall(used_input, used_output, reservation) is None

    def shortfall(self, used_input: int, used_output: int, reservation: Reservation) -> Shortfall | None:
        """The first limit ``reservation`` does not fit beside ``used_*`` tokens, or None."""
        for kind, limit, used, asked in self._limits(used_input, used_output, reservation):
            if used + asked > limit:
                return Shortfall(kind, limit, max(limit - used, 0), asked)
        return None

    def _limits(
        self, used_input: int, used_output: int, reservation: Reservation
    ) -> list[tuple[str, int, int, int]]:
        """``(kind, limit, used, asked)`` of each limit that applies, in the order they are checked."""
        return [
            (kind, limit, used, asked)
            for kind, limit, used, asked in (
                ("input + output", self.total, used_input + used_output, reservation.total),
                ("input", self.input, used_input, reservation.input),
                ("output", self.output, used_output, reservation.output),
            )
            if limit is not None
        ]

    def fits(self, reservation: Reservation) -> bool:
        """Whether ``reservation`` fits in an empty window at all (else no wait makes it fit)."""
        return self.admits(0, 0, reservation)

    def output_room(self, input_tokens: int) -> int | None:
        """The most output tokens any request with ``input_tokens`` could reserve in an empty window
        (None: no limit bounds output)."""
        bounds = [limit for limit in (self.output,) if limit is not None]
        if self.total is not None:
            bounds.append(self.total - input_tokens)
        return min(bounds) if bounds else None


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Why a reservation does not fit: the ``kind`` of limit (``input + output``, ``input``,
    ``output``), the ``limit``, the ``room`` left in it, and what the request ``asked`` of it."""

    kind: str
    limit: int
    room: int
    asked: int

    def message(self, *, ever: bool) -> str:
        """The refusal's message; ``ever``: whether the request could fit in an emptier window."""
        text = (
            f"token budget exceeded: this request reserves {self.asked} {self.kind} tokens (its body's"
            f" bytes and its output limit), and {self.room} of this window's {self.limit} are left"
        )
        if ever:
            return text + "; retry later, or ask for fewer output tokens"
        return text + f"; it can never fit in {self.limit}: ask for fewer output tokens (max_tokens)"


@dataclass(frozen=True, slots=True)
class Reservation:
    """Tokens held for one request until it is settled."""

    input: int
    output: int

    @property
    def total(self) -> int:
        return self.input + self.output


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """Where an API's requests limit their output: ``fields`` it reads (any of them, the largest
    counting), ``field`` the one the gateway sets when a request names none (None: the API produces
    no output tokens), ``choices`` the fields multiplying the output (``n``: that many answers, the
    largest counting), ``default`` the API's own limit when none is named (then nothing is set), and
    ``prompts`` a field that may list several prompts, each answered on its own (legacy completions).
    """

    fields: tuple[str, ...]
    field: str | None
    choices: tuple[str, ...] = ()
    default: int | None = None
    prompts: str | None = None


#: An API whose answers are not model output (embeddings, token counts).
NO_OUTPUT = OutputLimits((), None)


def reserve(
    body_bytes: int, payload: dict[str, Any], limits: OutputLimits, budget: TokenLimits
) -> tuple[Reservation, int | None]:
    """The reservation of a request of ``body_bytes`` bytes whose parsed body is ``payload``, and the
    output limit to write into its ``limits.field`` (None: the request names its own, or has none).

    A request naming no output limit gets ``budget.output_cap``, lowered to what ``budget`` could
    ever hold beside its input (so that a budget smaller than the cap still serves it). A value
    that is not a positive integer counts as not set (the upstream judges the request).
    """
    if limits.field is None:
        return Reservation(body_bytes, 0), None
    named = [value for name in limits.fields if (value := read_limit(payload.get(name))) is not None]
    answers = max((value for name in limits.choices if (value := read_limit(payload.get(name)))), default=1)
    if limits.prompts is not None:
        prompts = payload.get(limits.prompts)
        if isinstance(prompts, list) and prompts and not isinstance(prompts[0], int):
            answers *= len(prompts)  # a list of prompts (a flat list of integers is one prompt's tokens)
    if named:
        return Reservation(body_bytes, min(max(named) * answers, MAX_TOKENS)), None
    if limits.default is not None:
        return Reservation(body_bytes, min(limits.default * answers, MAX_TOKENS)), None
    output_cap = min(budget.output_cap, MAX_TOKENS)
    room = budget.output_room(body_bytes)
    if room is not None and room >= answers:
        output_cap = min(output_cap, room // answers)
    return Reservation(body_bytes, min(output_cap * answers, MAX_TOKENS)), output_cap


def read_limit(value: Any) -> int | None:
    """``value`` as a count of tokens, read as leniently as an upstream might (``100.0``, ``"100"``:
    the bound must hold for what the upstream makes of it); None when it is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, float):
        value = math.ceil(value) if math.isfinite(value) else MAX_TOKENS
    return min(value, MAX_TOKENS) if isinstance(value, int) and value > 0 else None


def charge(
    reservation: Reservation, usage: Usage | None, delivered_output: int | None, *, generated: bool
) -> Reservation:
    """What a settled request costs.

    ``delivered_output`` is set for a stream whose usage did not come whole (the gateway stopped
    it, its client left, its upstream failed or reports none): it is charged the output fragments
    it delivered, and the input the upstream reported early (Anthropic's ``message_start``) or else
    the reserved input. Otherwise: the ``usage`` the upstream reported; nothing when the upstream
    refused it (``generated`` False); the whole reservation for an answer without usage, or one
    whose client left before it came (the upstream may have produced it all).
    """
    if delivered_output is not None:
        tokens_in = usage.input_tokens if usage is not None and usage.input_tokens else reservation.input
        return Reservation(min(tokens_in, MAX_TOKENS), delivered_output)
    if usage is not None:  # the upstream's numbers: bounded before they reach a script
        return Reservation(min(usage.input_tokens, MAX_TOKENS), min(usage.output_tokens, MAX_TOKENS))
    if not generated:
        return Reservation(0, 0)
    return reservation


class StreamBudget:
    """Counts a stream's output fragments and cuts the stream before it passes ``reserved`` of them.

    ``process(events)`` returns the events to forward: all of them while the count stays within
    ``reserved``; on the event that would pass it, the events before it, and :attr:`exhausted` is
    set (the caller ends the stream). A fragment is a non-empty string at a place the API streams
    model text: a channel of a streamed choice (``locations.stream`` within ``locations.outputs``),
    or a delta event of a typed stream (``events``). The places are walked as a tree of keys, so an
    event's JSON is visited once, whatever the number of channels.
    """

    __slots__ = ("_by_type", "_choices", "count", "exhausted", "reserved")

    def __init__(self, reserved: int, locations: TextLocations, events: EventLocations | None) -> None:
        self.reserved = reserved
        self._choices = _tree([(locations.outputs, "*", *channel.path) for channel in locations.stream])
        grouped: dict[str, list[Path]] = {}
        for delta in events.deltas if events is not None else ():
            grouped.setdefault(delta.type, []).append(delta.text)
        self._by_type = {kind: _tree(paths) for kind, paths in grouped.items()}
        self.count = 0
        self.exhausted = False

    def process(self, events: list[SSEEvent]) -> list[SSEEvent]:
        for position, event in enumerate(events):
            fragments = self._fragments(event)
            if self.count + fragments > self.reserved:
                self.exhausted = True
                return events[:position]
            self.count += fragments
        return events

    def _fragments(self, event: SSEEvent) -> int:
        if event.data is None:
            return 0
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return 0
        if not isinstance(payload, dict):
            return 0
        if self._by_type:
            kind = payload.get("type")
            tree = self._by_type.get(kind) if isinstance(kind, str) else None
            return 0 if tree is None else _texts(payload, tree)
        return _texts(payload, self._choices)


#: Paths as a tree: each key maps to the tree below it, or to None where a text place ends.
_Tree = dict[str, "_Tree | None"]


def _tree(paths: list[Path]) -> _Tree:
    root: _Tree = {}
    for path in paths:
        node = root
        for key in path[:-1]:
            child = node.setdefault(key, {})
            assert child is not None, f"{path} goes on past a text place"
            node = child
        node[path[-1]] = None
    return root


def _texts(node: Any, tree: _Tree) -> int:
    """How many non-empty strings ``node`` holds at the places ``tree`` names (``"*"``: every
    element of a list)."""
    count = 0
    for key, below in tree.items():
        if key == "*":
            if isinstance(node, list) and below is not None:
                count += sum(_texts(item, below) for item in node)
            continue
        value = node.get(key) if isinstance(node, dict) else None
        if value is None:
            continue
        if below is None:
            count += isinstance(value, str) and value != ""
        else:
            count += _texts(value, below)
    return count


_NOTHING = Reservation(0, 0)
