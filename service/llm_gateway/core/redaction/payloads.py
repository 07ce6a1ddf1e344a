"""Redaction applied where model text lives in API payloads (pure): requests, responses, streams.

The places come from a :class:`~llm_gateway.core.redaction.locations.TextLocations`; everything else
is left exactly as it was, and an unchanged payload or stream event is never re-serialised.

Log probabilities: an entry whose token overlaps a redacted span is dropped (its token, its bytes
and its ``top_logprobs`` could spell what was redacted); the others are kept as they came. In a
stream, entries travel with the text they belong to: held while that text is held.
"""

from __future__ import annotations

import codecs
from collections import Counter, deque
from typing import Any, NamedTuple

import orjson

from llm_gateway.core import json_codec
from llm_gateway.core.json_codec import Dumps
from llm_gateway.core.redaction.engine import Redactor, StreamRedactor
from llm_gateway.core.redaction.entities import Entity
from llm_gateway.core.redaction.locations import Path, StreamChannel, TextLocations
from llm_gateway.core.sse import DONE, SSEEvent

__all__ = ["SSERedactor", "redact_json_text", "redact_paths", "redact_request", "redact_response"]

#: Content-part types that hold model text, and the field it is in.
TEXT_PARTS = {
    "text": "text",
    "input_text": "text",
    "output_text": "text",
    "summary_text": "text",
    "reasoning_text": "text",
    "refusal": "refusal",
}

_Place = tuple[Any, Any]  # (container, key): container[key] is the value at a path


def _places(node: Any, path: Path) -> list[_Place]:
    """Every ``(container, key)`` that ``path`` reaches in ``node`` (``"*"``: each list element)."""
    if "*" not in path:  # the usual shape, walked without recursion (it runs for every stream event)
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        return [(node, path[-1])] if isinstance(node, dict) and path[-1] in node else []
    star, rest = path.index("*"), path[path.index("*") + 1 :]
    lists = [node] if star == 0 else [container[key] for container, key in _places(node, path[:star])]
    found: list[_Place] = []
    for elements in lists:
        if isinstance(elements, list):
            for i, element in enumerate(elements):
                found.extend([(elements, i)] if not rest else _places(element, rest))
    return found


def _redact_text_place(place: _Place, redactor: Redactor, found: Counter[Entity]) -> bool:
    """Redact a text place (a string, or content parts); True when anything changed."""
    container, key = place
    value = container[key]
    if isinstance(value, str):
        redacted = redactor.redact(value, found)
        if redacted != value:
            container[key] = redacted
            return True
        return False
    changed = False
    for part in _text_parts(value):
        changed = _redact_text_place(part, redactor, found) or changed
    return changed


def _text_parts(value: Any) -> list[_Place]:
    """The places of model text among the content parts of ``value`` (none unless it is a list):
    the text of text-like parts (:data:`TEXT_PARTS`), and of ``document`` parts with a ``text``
    source (its ``data``) or a ``content`` source (its text parts). Other parts (images, files,
    base64 documents) are not text and pass untouched."""
    if not isinstance(value, list):
        return []
    found: list[_Place] = []
    for part in value:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        field = TEXT_PARTS.get(kind) if isinstance(kind, str) else None
        if field is not None and isinstance(part.get(field), str):
            found.append((part, field))
        elif kind == "document" and isinstance(source := part.get("source"), dict):
            if source.get("type") == "text" and isinstance(source.get("data"), str):
                found.append((source, "data"))
            elif source.get("type") == "content":
                found.extend(_text_parts(source.get("content")))
    return found


def redact_json_text(text: str, redactor: Redactor, found: Counter[Entity]) -> str:
    """JSON text (tool-call arguments) with entities redacted; it parses whenever ``text`` did."""
    stream = StreamRedactor(redactor, json_text=True)
    out = stream.feed(text) + stream.flush()
    found.update(stream.found)
    return out


def _redact_json_place(place: _Place, redactor: Redactor, found: Counter[Entity]) -> bool:
    """Redact JSON text, or (as some OpenAI-compatible servers accept) the JSON value itself: every
    string in it, keys aside."""
    container, key = place
    value = container[key]
    if isinstance(value, (dict, list)):
        # Walked with a stack, not recursion: an upstream's answer may nest a thousand levels deep.
        changed = False
        stack = [value]
        while stack:
            node = stack.pop()
            for inner in node.keys() if isinstance(node, dict) else range(len(node)):
                element = node[inner]
                if isinstance(element, str):
                    changed = _redact_text_place((node, inner), redactor, found) or changed
                elif isinstance(element, (dict, list)):
                    stack.append(element)
        return changed
    if not isinstance(value, str):
        return False
    redacted = redact_json_text(value, redactor, found)
    if redacted == value:
        return False
    container[key] = redacted
    return True


def redact_request(
    payload: dict[str, Any],
    redactor: Redactor,
    found: Counter[Entity],
    locations: TextLocations,
) -> bool:
    """Redact the model text of a request in place; True when anything changed."""
    return redact_paths(payload, locations.request_text, locations.request_json, redactor, found)


def redact_paths(
    payload: Any,
    text: tuple[Path, ...],
    json: tuple[Path, ...],
    redactor: Redactor,
    found: Counter[Entity],
) -> bool:
    """Redact, in place, the text places and the JSON-text places these paths reach in ``payload``;
    True when anything changed."""
    changed = False
    for path in text:
        for place in _places(payload, path):
            changed = _redact_text_place(place, redactor, found) or changed
    for path in json:
        for place in _places(payload, path):
            changed = _redact_json_place(place, redactor, found) or changed
    return changed


def redact_response(
    body: bytes,
    payload: Any,
    redactor: Redactor,
    found: Counter[Entity],
    locations: TextLocations,
    dumps: Dumps = orjson.dumps,
) -> bytes:
    """A whole response with its model text redacted (``body`` itself if nothing changed).

    ``payload`` is ``body`` already parsed, or None when it is not JSON: such a body is redacted as
    plain text, so nothing passes unexamined. ``dumps`` writes a changed payload (the writer
    :func:`~llm_gateway.core.json_codec.loads` gave with it).
    """
    if payload is None:
        return redactor.redact(body.decode("utf-8", "replace"), found).encode()
    if not isinstance(payload, dict):
        return body
    changed = False
    for _, index in _places(payload, (locations.outputs, "*")):
        choice = payload[locations.outputs][index]
        for logprobs_path, text_path in locations.response_logprobs:
            changed = _redact_with_logprobs(choice, text_path, logprobs_path, redactor, found) or changed
        for path in locations.response_json:
            for place in _places(choice, path):
                changed = _redact_json_place(place, redactor, found) or changed
        logprob_paths = {text_path for _, text_path in locations.response_logprobs}
        for path in locations.response_text:
            if path not in logprob_paths:
                for place in _places(choice, path):
                    changed = _redact_text_place(place, redactor, found) or changed
    return dumps(payload) if changed else body


def _redact_with_logprobs(
    choice: Any, text_path: Path, logprobs_path: Path, redactor: Redactor, found: Counter[Entity]
) -> bool:
    """Redact a text place and drop the log probabilities of what it redacted."""
    changed = False
    for container, key in _places(choice, text_path):
        text = container[key]
        if not isinstance(text, str):
            changed = _redact_text_place((container, key), redactor, found) or changed
            continue
        scan = redactor.scan(text, 0, final=True, found=found)
        if not scan.spans:
            continue
        container[key] = scan.text
        changed = True
        for entries_container, entries_key in _places(choice, logprobs_path):
            entries = entries_container[entries_key]
            if isinstance(entries, list):
                aligner = _LogprobAligner()
                aligner.add(entries, scan.spans)
                entries_container[entries_key] = aligner.rest()
    return changed


class _LogprobAligner:
    """Places log-probability entries on the text they spell and drops those over redacted spans.

    Each entry covers the characters its ``bytes`` decode to (its ``token`` when it has no bytes);
    an entry that ends inside a multi-byte character covers the place where that character starts.
    """

    __slots__ = ("_decoder", "_end", "_pending", "_spans")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._end = 0
        self._pending: deque[tuple[int, int, Any]] = deque()
        self._spans: deque[tuple[int, int]] = deque()

    def add(self, entries: list[Any], spans: list[tuple[int, int]]) -> None:
        self._spans.extend(spans)
        for entry in entries:
            start = self._end
            self._end += _chars(entry, self._decoder)
            self._pending.append((start, self._end, entry))

    def release(self, upto: int, *, final: bool = False) -> list[Any]:
        """The kept entries that lie wholly within the first ``upto`` characters (all, when ``final``)."""
        out = []
        while self._pending and self._pending[0][1] <= upto and (self._pending[0][0] < upto or final):
            start, end, entry = self._pending.popleft()
            end = max(end, start + 1)
            while self._spans and self._spans[0][1] <= start:
                self._spans.popleft()
            # Spans come in order and do not overlap: only the first left can overlap this entry.
            if not (self._spans and self._spans[0][0] < end):
                out.append(entry)
        return out

    def rest(self) -> list[Any]:
        return self.release(self._end, final=True)


def _chars(entry: Any, decoder: codecs.IncrementalDecoder) -> int:
    """How many characters an entry adds to the text."""
    if not isinstance(entry, dict):
        return 0
    raw = entry.get("bytes")
    if isinstance(raw, list) and all(isinstance(b, int) and 0 <= b < 256 for b in raw):
        return len(decoder.decode(bytes(raw)))
    token = entry.get("token")
    return len(token) if isinstance(token, str) else 0


class _Channel:
    """One redacted text stream (with its log probabilities) inside a streamed choice.

    ``parts`` is set once the stream came as lists of content parts (some OpenAI-compatible servers
    send ``delta.content`` so): their texts, in order, are the channel's text, and held text is
    flushed as a text part.
    """

    __slots__ = ("_redactor", "logprobs", "parts", "text")

    def __init__(self, redactor: Redactor, channel: StreamChannel) -> None:
        self._redactor = redactor
        self.text = StreamRedactor(redactor, json_text=channel.json)
        self.logprobs = _LogprobAligner() if channel.logprobs is not None else None
        self.parts = False

    def feed(self, place: _Place) -> bool:
        """Feed the text at ``place`` (a string, or content parts) and put back what is released;
        True when that changed it."""
        container, key = place
        fragment = container[key]
        if isinstance(fragment, str):
            released = self.text.feed(fragment)
            if released == fragment:
                return False
            container[key] = released
            return True
        if self.text.json_text:  # arguments sent as a JSON value (some servers do): whole, so redacted whole
            return _redact_json_place(place, self._redactor, self.text.found)
        changed = False
        for part in _text_parts(fragment):
            self.parts = True
            changed = self.feed(part) or changed
        return changed

    def entries(self, entries: list[Any] | None, *, final: bool) -> list[Any]:
        """Log-probability entries to send now (given this event's ``entries``)."""
        if self.logprobs is None:
            return []
        self.logprobs.add(entries or [], self.text.spans)
        self.text.spans.clear()
        return self.logprobs.rest() if final else self.logprobs.release(self.text.released)


#: A text channel of a stream: (choice index, number of the channel's spec, tool-call index or None).
_ChannelKey = tuple[Any, int, Any]


class _Plain(NamedTuple):
    """A plain chunk waiting for its run to be redacted (see :meth:`SSERedactor._plain_places`)."""

    event: SSEEvent
    payload: Any
    dumps: Dumps
    places: list[tuple[_ChannelKey, _Place]]


class SSERedactor:
    """Redacts a stream of chunks event by event, per choice and per text channel.

    ``process(events)`` returns the events to send: an event whose text nothing held back or
    replaced goes out as the exact bytes that came in; one that changed is re-serialised with every
    other field and SSE line kept. A choice's held text is released by its ``finish_reason`` event;
    text still held when ``[DONE]`` arrives (or at :meth:`finish`) goes out in an extra chunk for
    its choice, before ``[DONE]``. Events that are not JSON pass through whole-text redaction.
    """

    def __init__(self, redactor: Redactor, locations: TextLocations) -> None:
        self._redactor = redactor
        self._locations = locations
        self._choices: dict[Any, dict[tuple[int, Any], _Channel]] = {}
        self._template: dict[str, Any] = {}  # the last chunk's envelope, for chunks of held text
        self.found: Counter[Entity] = Counter()

    def process(self, events: list[SSEEvent]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        run: list[_Plain] = []
        for event in events:
            data = event.data
            if data is None or data == DONE:
                out.extend(self._run(run))
                run = []
                out.extend(self.finish() if data is not None else ())
                out.append(event)
                continue
            payload, dumps = _loads(data)
            places = self._plain_places(payload)
            if places is not None:
                run.append(_Plain(event, payload, dumps, places))
                continue
            out.extend(self._run(run))
            run = []
            out.append(self._event(event, data, payload, dumps))
        out.extend(self._run(run))
        return out

    def finish(self) -> list[SSEEvent]:
        """Chunks for text still held, one per choice; afterwards nothing is held."""
        events = []
        for index in list(self._choices):
            choice: dict[str, Any] = {
                "index": index,
                **{name: {} for name in self._locations.stream_choice},
                "finish_reason": None,
            }
            if self._flush(index, choice):
                chunk = {**self._template, self._locations.outputs: [choice]}
                events.append(SSEEvent.of_data(orjson.dumps(chunk)))
        return events

    def _plain_places(self, payload: Any) -> list[tuple[_ChannelKey, _Place]] | None:
        """For a plain chunk, the text places of its choices in order, each with its channel; None
        for any other chunk. Plain: choices whose text channels hold strings, without log
        probabilities or a ``finish_reason`` (the usual chunk of a stream)."""
        choices = payload.get(self._locations.outputs) if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices:
            return None
        found: list[tuple[_ChannelKey, _Place]] = []
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("finish_reason") is not None:
                return None
            index = _key(choice.get("index", 0))
            for number, spec in enumerate(self._locations.stream):
                if spec.logprobs and _present(choice, spec.logprobs):
                    return None
                if not _present(choice, spec.path):
                    continue
                for element, place in _channel_places(choice, spec.path):
                    if not isinstance(place[0][place[1]], str):
                        return None
                    found.append(((index, number, element), place))
        return found

    def _run(self, run: list[_Plain]) -> list[SSEEvent]:
        """Redact consecutive plain chunks together: each channel's fragments in one scan.

        When that scan replaces nothing, each fragment keeps its place: text held from an earlier
        read goes out at the start of the first, and only text that must still be held (a possible
        entity at the end) leaves its chunk. Otherwise the channel's fragments are fed one by one,
        as :meth:`_event` feeds them.
        """
        if not run:
            return []
        by_channel: dict[_ChannelKey, list[tuple[int, _Place]]] = {}
        for i, plain in enumerate(run):
            for channel_key, place in plain.places:
                by_channel.setdefault(channel_key, []).append((i, place))
        changed = [False] * len(run)
        for (index, number, element), places in by_channel.items():
            channels = self._choices.setdefault(index, {})
            channel = channels.get((number, element))
            if channel is None:
                channel = channels[number, element] = _Channel(self._redactor, self._locations.stream[number])
            fragments = [container[key] for _, (container, key) in places]
            result = channel.text.feed_released("".join(fragments))
            if result is None:
                for i, place in places:
                    changed[i] = channel.feed(place) or changed[i]
            else:
                # Text held from an earlier read opens the first fragment; text still held leaves its own.
                prefix, released = result
                for (i, (container, key)), fragment in zip(places, fragments, strict=True):
                    out = prefix + fragment[:released]
                    if out != fragment:
                        container[key] = out
                        changed[i] = True
                    prefix, released = "", max(released - len(fragment), 0)
            self._count(channel.text)
        self._template = _envelope(run[-1].payload)
        return [
            plain.event.with_data(plain.dumps(plain.payload)) if changed[i] else plain.event
            for i, plain in enumerate(run)
        ]

    def _event(self, event: SSEEvent, data: bytes, payload: Any, dumps: Dumps) -> SSEEvent:
        if payload is _NOT_JSON:
            found: Counter[Entity] = Counter()
            text = self._redactor.redact(data.decode("utf-8", "replace"), found)
            self.found.update(found)
            return event.with_data(text.encode()) if found else event
        choices = payload.get(self._locations.outputs) if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices:
            return event
        self._template = _envelope(payload)
        changed = False
        for choice in choices:
            if isinstance(choice, dict):
                changed = self._choice(choice) or changed
        return event.with_data(dumps(payload)) if changed else event

    def _choice(self, choice: dict[str, Any]) -> bool:
        index = _key(choice.get("index", 0))
        channels = self._choices.setdefault(index, {})
        changed = False
        for number, spec in enumerate(self._locations.stream):
            if not (_present(choice, spec.path) or (spec.logprobs and _present(choice, spec.logprobs))):
                continue  # the usual case for most channels: a cheap look before any walking
            for element, place in _channel_places(choice, spec.path):
                channel = channels.get((number, element))
                if channel is None:
                    channel = channels[number, element] = _Channel(self._redactor, spec)
                changed = channel.feed(place) or changed
                self._count(channel.text)
            if spec.logprobs is not None:
                channel = channels.get((number, None))
                if channel is None and any(True for _ in _places(choice, spec.logprobs)):
                    channel = channels[number, None] = _Channel(self._redactor, spec)
                changed = self._logprobs(choice, spec.logprobs, channel) or changed
        if choice.get("finish_reason") is not None:
            changed = self._flush(index, choice) or changed
        return changed

    def _logprobs(self, choice: dict[str, Any], path: Path, channel: _Channel | None) -> bool:
        for container, key in _places(choice, path):
            entries = container[key]
            if not isinstance(entries, list) or channel is None:
                continue
            kept = channel.entries(entries, final=False)
            if len(kept) != len(entries) or any(a is not b for a, b in zip(kept, entries, strict=True)):
                container[key] = kept
                return True
        return False

    def _flush(self, index: Any, choice: dict[str, Any]) -> bool:
        """Put a choice's held text (and log probabilities) into ``choice``; True if there was any."""
        added = False
        elements = _Elements()
        for (number, element), channel in self._choices.pop(index, {}).items():
            spec = self._locations.stream[number]
            rest = channel.text.flush()
            self._count(channel.text)
            if rest:
                _append_text(choice, spec.path, element, rest, elements, parts=channel.parts)
                added = True
            if spec.logprobs is not None:
                entries = channel.entries(None, final=True)
                if entries:
                    _append_entries(choice, spec.logprobs, entries)
                    added = True
        return added

    def _count(self, stream: StreamRedactor) -> None:
        if stream.found:
            self.found.update(stream.found)
            stream.found.clear()


def _envelope(payload: dict[str, Any]) -> dict[str, Any]:
    """The fields of a chunk that a chunk of held text repeats."""
    return {key: payload[key] for key in ("id", "object", "created", "model") if key in payload}


def _channel_places(choice: dict[str, Any], path: Path) -> list[tuple[Any, _Place]]:
    """``(element, place)`` for a channel path: ``element`` is the ``index`` of the list element the
    ``"*"`` went through (a tool call), or None."""
    if "*" not in path:
        return [(None, place) for place in _places(choice, path)]
    star = path.index("*")
    found: list[tuple[Any, _Place]] = []
    for elements, i in _places(choice, path[: star + 1]):
        element = elements[i]
        if isinstance(element, dict):
            found.extend((_key(element.get("index")), place) for place in _places(element, path[star + 1 :]))
    return found


def _append_text(
    choice: dict[str, Any], path: Path, element: Any, text: str, elements: _Elements, *, parts: bool
) -> None:
    """Add ``text`` at ``path`` in ``choice``, creating what is missing (a tool call by its index);
    with ``parts``, as a text part."""
    node: Any = choice
    for position, key in enumerate(path[:-1]):
        if key == "*":
            node = elements.find(path, node, element)
            continue
        following = path[position + 1]
        if not isinstance(node.get(key), (dict, list)):
            node[key] = [] if following == "*" else {}
        node = node[key]
    last, existing = path[-1], node.get(path[-1])
    if parts:
        node[last] = [*(existing if isinstance(existing, list) else []), {"type": "text", "text": text}]
    else:
        node[last] = existing + text if isinstance(existing, str) else text


class _Elements:
    """The elements of a choice's lists (tool calls) by their ``index``, indexed once per list, so
    that flushing many tool calls is linear."""

    def __init__(self) -> None:
        self._by_list: dict[Path, dict[Any, dict[str, Any]]] = {}

    def find(self, path: Path, elements: list[Any], index: Any) -> dict[str, Any]:
        """The element of ``elements`` (reached by ``path``) with this ``index``, appended if missing."""
        known = self._by_list.get(path)
        if known is None:
            known = self._by_list[path] = {}
            for existing in elements:
                if isinstance(existing, dict):
                    known.setdefault(_key(existing.get("index")), existing)
        if index not in known:
            known[index] = _new(elements, index)
        return known[index]


def _present(choice: dict[str, Any], path: Path) -> bool:
    """Whether the first two steps of ``path`` exist in ``choice`` (``delta.content``, say)."""
    node = choice.get(path[0])
    return len(path) == 1 or (isinstance(node, dict) and node.get(path[1]) is not None)


def _key(index: Any) -> Any:
    """A choice's or tool call's ``index`` as a dictionary key: the number a client reads it as
    (``0``, ``"0"`` and ``0.0`` are one choice to the SDKs, so one channel here), else as it came
    (a hostile upstream may send a list)."""
    if isinstance(index, bool):
        return int(index)
    if isinstance(index, float) and index.is_integer():
        return int(index)
    if isinstance(index, str) and index.strip().isdigit():
        return int(index)
    # Anything else is no index a client can read: one channel for all of it (never its repr, which
    # a deeply nested value would make costly or impossible).
    return index if isinstance(index, (int, str)) or index is None else _INVALID_INDEX


def _new(elements: list[Any], index: Any) -> dict[str, Any]:
    element = {"index": index}
    elements.append(element)
    return element


def _append_entries(choice: dict[str, Any], path: Path, entries: list[Any]) -> None:
    node: Any = choice
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    existing = node.get(path[-1])
    node[path[-1]] = (existing if isinstance(existing, list) else []) + entries


_NOT_JSON = object()
_INVALID_INDEX = "(invalid)"


def _loads(data: bytes) -> tuple[Any, Dumps]:
    """``data`` parsed exactly (see :mod:`~llm_gateway.core.json_codec`), or ``_NOT_JSON``."""
    try:
        return json_codec.loads(data)
    except ValueError:
        return _NOT_JSON, orjson.dumps
