"""Redaction of streams of typed events (pure): OpenAI Responses, Anthropic Messages.

Where a chat-completion stream repeats one chunk shape, these streams name each event by a
``type`` field, and text arrives in *delta* events of a channel (a content block by its ``index``,
a content part by ``item_id`` and ``content_index``), ends with a *closing* event of that channel,
and is often repeated whole in *summary* events (``response.output_text.done``,
``response.completed``). An :class:`EventLocations` says which is which, as data.

Delta fragments go through one :class:`~llm_gateway.core.redaction.engine.StreamRedactor` per
channel: text that could still be the start of an entity is held, and released by a later delta of
its channel or, at its closing event, in one more delta event of that channel placed just before
it (a copy of the channel's last delta with the held text). Summary events are redacted whole at
the paths given; since the stream redactor releases what whole-text redaction gives, a summary says
what the deltas spelled. Events nothing changed go out as the bytes that came in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from llm_gateway.core import json_codec
from llm_gateway.core.json_codec import Dumps
from llm_gateway.core.redaction.engine import Redactor, StreamRedactor
from llm_gateway.core.redaction.entities import Entity
from llm_gateway.core.redaction.locations import Path
from llm_gateway.core.redaction.payloads import redact_paths
from llm_gateway.core.sse import SSEEvent

__all__ = ["MAX_OPEN_CHANNELS", "DeltaEvent", "EventLocations", "EventRedactor"]

#: How many channels may be open at once; opening one more releases the oldest (its held text,
#: redacted as at a closing event), so a stream that never closes its channels holds bounded memory.
MAX_OPEN_CHANNELS = 1024


@dataclass(frozen=True, slots=True)
class DeltaEvent:
    """An event type carrying a fragment of a channel's text at ``text``.

    ``channel`` names the fields whose values identify the channel; ``when`` (a path and a value)
    narrows it to events where that path holds that value (Anthropic's ``delta.type``); ``json``
    marks JSON text (tool arguments), redacted so that it still parses.
    """

    type: str
    channel: tuple[str, ...]
    text: Path
    when: tuple[Path, str] | None = None
    json: bool = False


@dataclass(frozen=True, slots=True)
class EventLocations:
    """Where text is in a typed event stream.

    ``deltas``: the event types that carry fragments. ``closing``: event types that end a channel,
    each with the fields naming it. ``summary_text``/``summary_json``: per event type, paths
    (``"*"`` for every list element) of text, or JSON text, redacted whole. ``final``: event types
    that end the stream, before which every channel still open releases what it holds.
    """

    deltas: tuple[DeltaEvent, ...]
    closing: tuple[tuple[str, tuple[str, ...]], ...]
    summary_text: tuple[tuple[str, tuple[Path, ...]], ...] = ()
    summary_json: tuple[tuple[str, tuple[Path, ...]], ...] = ()
    final: tuple[str, ...] = ()


class _Channel:
    __slots__ = ("delta", "last", "text")

    def __init__(self, redactor: Redactor, delta: DeltaEvent) -> None:
        self.delta = delta
        self.text = StreamRedactor(redactor, json_text=delta.json)
        # The channel's last delta event (its payload and writer): the template for held text.
        self.last: tuple[SSEEvent, dict[str, Any], Dumps] | None = None


class EventRedactor:
    """Redacts a typed event stream event by event (see the module's description).

    ``process(events)`` returns the events to send; :meth:`finish` returns delta events for text
    still held when the stream ends without closing its channels. ``found`` counts what was redacted.
    """

    def __init__(self, redactor: Redactor, locations: EventLocations) -> None:
        self._redactor = redactor
        self._deltas: dict[str, list[tuple[int, DeltaEvent]]] = {}
        for number, delta in enumerate(locations.deltas):
            self._deltas.setdefault(delta.type, []).append((number, delta))
        self._closing = dict(locations.closing)
        self._summary_text = dict(locations.summary_text)
        self._summary_json = dict(locations.summary_json)
        self._final = frozenset(locations.final)
        # By (number of the delta spec, the channel's field values); and the spec numbers open for
        # each field values, so that a closing event finds its channels without a scan.
        self._channels: dict[tuple[Any, ...], _Channel] = {}
        self._open: dict[tuple[Any, ...], list[int]] = {}
        self.found: Counter[Entity] = Counter()

    def process(self, events: list[SSEEvent]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        for event in events:
            if event.data is None:
                out.append(event)
                continue
            try:
                payload, dumps = json_codec.loads(event.data)
            except ValueError:
                out.append(self._plain(event, event.data))
                continue
            if not isinstance(payload, dict):
                out.append(event)
                continue
            kind = payload.get("type")
            if not isinstance(kind, str):  # the SDKs read the `event:` line's name then
                name = event.field(b"event")
                kind = name.decode("utf-8", "replace") if name is not None else None
            if kind is None:
                out.append(event)
                continue
            if kind in self._final:
                out.extend(self.finish())
            if kind in self._closing:
                closed = _key(payload, self._closing[kind])
                for number in self._open.pop(closed, ()):
                    out.extend(self._flush((number, *closed)))
            out.extend(self._event(event, kind, payload, dumps))
        return out

    def finish(self) -> list[SSEEvent]:
        """Delta events with the text every open channel still holds; afterwards nothing is held."""
        self._open.clear()
        return [event for key in list(self._channels) for event in self._flush(key)]

    def _event(self, event: SSEEvent, kind: str, payload: dict[str, Any], dumps: Dumps) -> list[SSEEvent]:
        """The event, redacted, after any events it makes a full channel table release."""
        released: list[SSEEvent] = []
        changed = False
        for number, delta in self._deltas.get(kind, ()):
            if delta.when is not None and _at(payload, delta.when[0]) != delta.when[1]:
                continue
            fragment = _at(payload, delta.text)
            if not isinstance(fragment, str):
                continue
            values = _key(payload, delta.channel)
            key = (number, *values)
            channel = self._channels.get(key)
            if channel is None:
                if len(self._channels) >= MAX_OPEN_CHANNELS:  # a hostile stream opening channel after channel
                    oldest = next(iter(self._channels))
                    released.extend(self._flush(oldest))
                    numbers = self._open[oldest[1:]]
                    numbers.remove(oldest[0])
                    if not numbers:
                        del self._open[oldest[1:]]
                channel = self._channels[key] = _Channel(self._redactor, delta)
                self._open.setdefault(values, []).append(number)
            channel.last = (event, payload, dumps)
            passed = channel.text.feed(fragment)
            self._count(channel.text)
            if passed != fragment:
                _put(payload, delta.text, passed)
                changed = True
        text, json = self._summary_text.get(kind), self._summary_json.get(kind)
        if text or json:
            found: Counter[Entity] = Counter()
            changed = redact_paths(payload, text or (), json or (), self._redactor, found) or changed
            self.found.update(found)
        released.append(event.with_data(dumps(payload)) if changed else event)
        return released

    def _flush(self, key: tuple[Any, ...]) -> list[SSEEvent]:
        channel = self._channels.pop(key)
        rest = channel.text.flush()
        self._count(channel.text)
        if not rest or channel.last is None:
            return []
        event, payload, dumps = channel.last
        return [event.with_data(dumps(_with(payload, channel.delta.text, rest)))]

    def _plain(self, event: SSEEvent, data: bytes) -> SSEEvent:
        found: Counter[Entity] = Counter()
        text = self._redactor.redact(data.decode("utf-8", "replace"), found)
        self.found.update(found)
        return event.with_data(text.encode()) if found else event

    def _count(self, stream: StreamRedactor) -> None:
        if stream.found:
            self.found.update(stream.found)
            stream.found.clear()


def _at(node: Any, path: Path) -> Any:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _with(node: dict[str, Any], path: Path, value: str) -> dict[str, Any]:
    """A copy of ``node`` with ``value`` at ``path``: only the objects on the path are copied (the
    rest is shared, and may be nested deeper than any copy could go)."""
    copied = dict(node)
    if len(path) > 1:
        inner = node[path[0]]
        copied[path[0]] = _with(inner, path[1:], value) if isinstance(inner, dict) else inner
    else:
        copied[path[0]] = value
    return copied


def _put(node: dict[str, Any], path: Path, value: str) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _key(payload: dict[str, Any], fields: tuple[str, ...]) -> tuple[Any, ...]:
    """The channel's identity: its fields' values, as hashable keys (a hostile upstream may send lists)."""
    return tuple(_hashable(payload.get(field)) for field in fields)


def _hashable(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    # Anything else names no channel a client can tell apart: one channel for all of it.
    return value if isinstance(value, (int, str)) or value is None else "(invalid)"
