"""The redaction engine: regex candidates, validators, whole-text and streaming (pure).

Both modes run the same scan, so streaming a text in any fragments yields exactly what redacting
it whole does. The streaming side uses the ``regex`` module's partial matching: a candidate that
reaches the end of the text received so far (or only a prefix of one, such as ``jane.do``) is held
back, and everything before it is released at once. What is held is bounded by the detectors'
``max_len`` (see :mod:`~llm_gateway.core.redaction.detectors`), so the work for a fragment is
proportional to the fragment plus that bound, never to the length of the stream.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable, Iterable

import hyperscan
import regex

from llm_gateway.core.redaction.detectors import (
    DEFAULT_PHONE_REGIONS,
    LOOKBEHIND,
    build_detectors,
    prefilter_pattern,
)
from llm_gateway.core.redaction.entities import Entity
from llm_gateway.core.redaction.json_strings import JsonStrings
from llm_gateway.core.redaction.replacement import Replacer

__all__ = ["Placement", "Redactor", "Scan", "StreamRedactor"]

#: From this many characters on, one hyperscan pass over the detectors' whole patterns (not only
#: their triggers) decides which detectors run at all.
_PREFILTER_MIN = 1024

#: Every detector's tail matches within the last this many characters (a test checks it).
TAIL_SPAN = 24

#: Released text a stream keeps before what it holds, for the detectors' look-behinds.
_CONTEXT = LOOKBEHIND


class Redactor:
    """Redacts ``entities`` (all by default) with ``replacer``. Stateless: share one per process.

    Each detector searches on its own (a combined alternation defeats the regex engine's literal
    and first-character optimisations and ran 5 to 30 times slower); their candidates are merged so that
    the result is the same as one alternation would give: the leftmost candidate wins, ties go to
    the detector listed first, and a candidate that fails validation lets a later detector's
    candidate at the same place have its turn.
    """

    def __init__(
        self,
        replacer: Replacer,
        entities: Iterable[Entity] | None = None,
        phone_regions: Iterable[str] = DEFAULT_PHONE_REGIONS,
    ) -> None:
        wanted = set(Entity) if entities is None else set(entities)
        self._detectors = tuple(d for d in build_detectors(tuple(phone_regions)) if d.entity in wanted)
        self._patterns = tuple(regex.compile(d.pattern) for d in self._detectors)
        self._triggers = tuple(regex.compile(d.trigger) for d in self._detectors)
        self._tails = tuple(regex.compile(d.tail) if d.tail else None for d in self._detectors)
        self._runs = tuple(regex.compile(f"{d.run}*") if d.run else None for d in self._detectors)
        # The cheap checks, all detectors in one hyperscan pass each for ASCII text (the usual case;
        # a per-detector search costs about a microsecond of call overhead, a literal alternation
        # tens): which whole candidates (long texts), which triggers, which tails at the end.
        numbered = list(enumerate(self._detectors))
        self._prefilter = _Multi({i: prefilter_pattern(d.pattern) for i, d in numbered})
        # Detectors that share a trigger (most share `\d`) share one hyperscan pattern.
        by_trigger: dict[str, list[int]] = {}
        for i, detector in numbered:
            by_trigger.setdefault(detector.trigger, []).append(i)
        self._trigger_members = tuple(by_trigger.values())
        self._trigger_set = _Multi({g: prefilter_pattern(t) for g, t in enumerate(by_trigger)})
        self._tail_set = _Multi({i: prefilter_pattern(d.tail) for i, d in numbered if d.tail is not None})
        self._replace = replacer
        #: The most text a stream ever holds: no detector can turn a longer text into an entity.
        self.max_hold = max((d.max_len for d in self._detectors), default=0)

    def redact(self, text: str, found: Counter[Entity] | None = None) -> str:
        """``text`` with every entity replaced; adds what it replaced to ``found``."""
        return self.scan(text, 0, final=True, found=found).text

    def scan(
        self,
        text: str,
        pos: int,
        *,
        final: bool,
        found: Counter[Entity] | None,
        place: Placement | None = None,
    ) -> Scan:
        """Redact ``text[pos:]`` up to the first place that more text could still change.

        Returns the redacted safe part, the index in ``text`` where the held part begins
        (``len(text)`` when ``final`` or when nothing needs holding), the ``(start, end)`` spans of
        ``text`` it replaced and, when a run detector's candidate outgrew its ``max_len`` and was
        redacted up to the end of ``text``, the pattern of the run whose continuation the caller
        must swallow. ``place(start, replacement)`` may adapt a replacement to where it stands
        (quoting it outside a JSON string, for example).
        """
        partial = not final
        length = len(text)
        active = self._active(text, pos, partial)  # detector -> where its candidates can start
        if not active:
            return Scan(text[pos:], length)
        nexts: dict[int, regex.Match[str] | None] = {}
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        emitted = pos
        end = length
        swallow: regex.Pattern[str] | None = None
        while True:
            for i, floor in active.items():
                if i not in nexts or ((current := nexts[i]) is not None and current.start() < pos):
                    nexts[i] = self._search(i, text, max(pos, floor), partial)
            ranked = sorted((m.start(), i) for i, m in nexts.items() if m is not None)
            if not ranked:
                break
            start = ranked[0][0]
            hit: tuple[int, str] | None = None
            hold = False
            for candidate_start, i in ranked:
                if candidate_start != start:
                    break
                match = nexts[i]
                assert match is not None
                # If the rest of the text could still be the start of a longer match (`jane.doe@x.co`
                # before the `m`), more text may change this candidate: hold it, within its bound.
                if partial and (match.partial or self._patterns[i].fullmatch(text, start, partial=True)):
                    if length - start <= self._detectors[i].max_len:
                        hold = True
                        break
                    whole = self._patterns[i].fullmatch(text, start) if self._runs[i] else None
                    if whole is not None and self._detectors[i].validate(whole.group()):
                        hit, swallow = (i, whole.group()), self._runs[i]  # already an entity: redact now
                    break
                if self._detectors[i].validate(match.group()):
                    hit = (i, match.group())
                    break
            if hold:
                end = start
                break
            if hit is None:  # every candidate here failed validation: skip the first one
                first = nexts[ranked[0][1]]
                assert first is not None
                pos = max(first.end(), start + 1)
                continue
            i, value = hit
            detector = self._detectors[i]
            parts.append(text[emitted:start])
            # A run's identity is its first max_len characters, so hashes agree in both modes.
            replacement = self._replace(detector.entity, value[: detector.max_len] if detector.run else value)
            parts.append(place(start, replacement) if place is not None else replacement)
            if found is not None:
                found[detector.entity] += 1
            emitted = pos = start + len(value)
            spans.append((start, pos))
            if swallow is not None:
                break
        parts.append(text[emitted:end])
        return Scan("".join(parts), end, spans, swallow)

    def _search(self, i: int, text: str, pos: int, partial: bool) -> regex.Match[str] | None:
        """Detector ``i``'s next candidate from ``pos``.

        Partial matching is several times slower than plain matching, and only the last ``max_len``
        characters can hold a partial candidate of the detector (a longer one would outgrow its
        bound; a run's is found whole, to the end): before that, a plain search gives the same
        answer. Keeping partial searches inside that window also keeps out what the ``regex``
        module reports as a partial match past a failed look-behind (the rest of the text).
        """
        certain = len(text) - self._detectors[i].max_len if partial else len(text)
        if pos < certain:
            match = self._patterns[i].search(text, pos)
            if (match is not None and match.start() < certain) or not partial:
                return match
            pos = certain
        return self._patterns[i].search(text, pos, partial=partial)

    def _active(self, text: str, pos: int, partial: bool) -> dict[int, int]:
        """The detectors that may have a candidate (or, ``partial``, the start of one) in ``text[pos:]``,
        each with the first place one can start.

        A trigger may lie in a candidate's look-behind context, so triggers are looked for from
        ``LOOKBEHIND`` characters before ``pos``. For long texts the prefilter (whole patterns)
        must agree too.
        """
        length = len(text)
        ascii_text = text.isascii()
        long_text = length - pos >= _PREFILTER_MIN
        context = max(0, pos - _CONTEXT)
        data = text.encode() if ascii_text else b""
        if ascii_text:
            groups = self._trigger_set.ids(data[context:])
            triggered = {i for g in groups for i in self._trigger_members[g]}
            whole = triggered & self._prefilter.ids(data[pos:]) if long_text and triggered else triggered
        else:
            triggered = {i for i, trigger in enumerate(self._triggers) if trigger.search(text, context)}
            whole = triggered
        active = dict.fromkeys(sorted(whole), pos)
        if not partial:
            return active
        # No whole candidate, but the start of one near the end: with its trigger within max_len
        # (and its context: only long texts can have triggered detectors that are not active yet),
        # or without it, within tail_len, ending with its tail.
        for i in sorted(triggered - whole):
            window = max(pos, length - self._detectors[i].max_len)
            if self._triggers[i].search(text, max(0, window - _CONTEXT)):
                active[i] = window
        if ascii_text:
            tails = self._tail_set.ids(data[max(pos, length - TAIL_SPAN) :])
        else:
            tails = {i for i, tail in enumerate(self._tails) if tail is not None and tail.search(text, pos)}
        for i in sorted(tails - active.keys()):
            active[i] = max(pos, length - self._detectors[i].tail_len)
        return active


#: ``place(start, replacement)``: the text that stands for an entity found at ``start``.
Placement = Callable[[int, str], str]


class Scan:
    """What :meth:`Redactor.scan` found: the ``text`` to release, where the held part starts, the
    spans it replaced, and a run to swallow."""

    __slots__ = ("held_from", "spans", "swallow", "text")

    def __init__(
        self,
        text: str,
        held_from: int,
        spans: list[tuple[int, int]] | None = None,
        swallow: regex.Pattern[str] | None = None,
    ) -> None:
        self.text = text
        self.held_from = held_from
        self.spans = spans or []
        self.swallow = swallow


class _Multi:
    """Which of several patterns occur in a text: one hyperscan pass over all of them (ASCII only).

    Patterns are over-approximations from :func:`prefilter_pattern`: a pattern that does not occur
    rules its detector out. Safe to share between threads (the relay redacts large batches in
    worker threads): hyperscan's scratch space is per thread.
    """

    def __init__(self, patterns: dict[int, bytes]) -> None:
        self._db = _database(tuple(patterns.items())) if patterns else None
        self._scratch = threading.local()

    def ids(self, data: bytes) -> set[int]:
        """The ids of the patterns that occur in ``data``."""
        found: set[int] = set()
        if self._db is None or not data:
            return found

        def on_match(index: int, start: int, end: int, flags: int, context: object) -> None:
            found.add(index)

        scratch = getattr(self._scratch, "space", None)
        if scratch is None:
            scratch = self._scratch.space = hyperscan.Scratch(self._db)
        self._db.scan(data, match_event_handler=on_match, scratch=scratch)
        return found


@functools.lru_cache(maxsize=32)
def _database(patterns: tuple[tuple[int, bytes], ...]) -> hyperscan.Database:
    """A compiled hyperscan database of ``(id, expression)`` pairs, one match reported per id.

    Compiling takes about 0.2 s per database; databases are read-only, so redactors built with the
    same detectors share them.
    """
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    ids, expressions = [i for i, _ in patterns], [e for _, e in patterns]
    db.compile(
        expressions=expressions, ids=ids, elements=len(ids), flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(ids)
    )
    return db


class StreamRedactor:
    """Sans-I/O streaming redaction: ``feed(fragment)`` returns the text now safe to release,
    ``flush()`` the rest at the end. Concatenated, the outputs equal ``redactor.redact(whole)``.

    At most ``redactor.max_hold`` characters are held between calls, and a call costs time in
    proportion to its fragment plus that bound. ``found`` counts the entities replaced so far;
    ``spans`` lists the ``(start, end)`` character offsets of the input they covered (the caller
    may drain it), and ``released`` is how much of the input is decided. With ``json_text`` the
    input is JSON text (tool-call arguments): a replacement outside a string is quoted, so the
    text still parses.
    """

    __slots__ = ("_buffer", "_fed", "_held_from", "_json", "_redactor", "_swallow", "found", "spans")

    def __init__(self, redactor: Redactor, *, json_text: bool = False) -> None:
        self._redactor = redactor
        self._buffer = ""  # a suffix of the input: held text, after a little released context
        self._held_from = 0
        self._fed = 0
        self._swallow: regex.Pattern[str] | None = None
        self._json = JsonStrings() if json_text else None
        self.found: Counter[Entity] = Counter()
        self.spans: list[tuple[int, int]] = []

    @property
    def json_text(self) -> bool:
        """Whether the input is JSON text."""
        return self._json is not None

    @property
    def released(self) -> int:
        """How many characters of the input are decided (released, or redacted)."""
        return self._fed - (len(self._buffer) - self._held_from)

    def feed(self, fragment: str) -> str:
        self._fed += len(fragment)
        if self._swallow is not None:
            fragment = self._swallowed(fragment)
        if not fragment:
            return ""
        self._buffer += fragment
        return self._release(self._scan(final=False, found=self.found))

    def feed_released(self, fragment: str) -> tuple[str, int] | None:
        """Feed ``fragment`` if that replaces nothing: returns the held text it releases (what earlier
        fragments left held, or a first part of it) and how many of ``fragment``'s first characters
        are released as they are; the rest is held, as :meth:`feed` holds it.

        Otherwise returns ``None`` and nothing is fed (feed the fragment's pieces one by one). Lets a
        caller with several fragments at hand redact them with one scan and keep each in its place.
        """
        if self._swallow is not None or not fragment:
            return None
        before, held = self._buffer, len(self._buffer) - self._held_from
        self._buffer += fragment
        scan = self._scan(final=False, found=None)  # whatever it finds is not taken
        if scan.spans or scan.swallow is not None:
            self._buffer = before
            return None
        self._fed += len(fragment)
        text = self._release(scan)  # nothing replaced: the held text, then the fragment's start
        return text[:held], max(len(text) - held, 0)

    def flush(self) -> str:
        self._swallow = None
        return self._release(self._scan(final=True, found=self.found))

    def _swallowed(self, fragment: str) -> str:
        """``fragment`` less the continuation of a run already redacted (the redacted run is context)."""
        assert self._swallow is not None
        n = self._swallow.match(fragment).end()  # type: ignore[union-attr]  # `run*` always matches
        if n:
            self._buffer = (self._buffer + fragment[:n])[-_CONTEXT:]
            self._held_from = len(self._buffer)
            start = self._fed - len(fragment)  # the run goes on: its continuation is redacted too
            self.spans.append((start, start + n))
        if n < len(fragment):
            self._swallow = None
        return fragment[n:]

    def _scan(self, *, final: bool, found: Counter[Entity] | None) -> Scan:
        place = self._json_placement(self._buffer) if self._json is not None else None
        return self._redactor.scan(self._buffer, self._held_from, final=final, found=found, place=place)

    def _release(self, scan: Scan) -> str:
        """Take ``scan`` (of the buffer) as decided: note its spans, keep what it holds, return its text."""
        buffer, base = self._buffer, self._fed - len(self._buffer)
        self.spans.extend((base + start, base + end) for start, end in scan.spans)
        held = scan.held_from
        if scan.swallow is not None:  # redacted up to the end: what follows may still be its run
            self._swallow = scan.swallow
            held = len(buffer)
        if self._json is not None:
            self._json.advance(buffer[self._held_from : held])
        keep_from = max(held - _CONTEXT, 0)
        self._buffer = buffer[keep_from:]
        self._held_from = held - keep_from
        return scan.text

    def _json_placement(self, buffer: str) -> Placement:
        """Quote a replacement that stands outside a JSON string (hits come in order)."""
        assert self._json is not None
        read, cursor = self._json.copy(), self._held_from

        def place(start: int, replacement: str) -> str:
            nonlocal cursor
            read.advance(buffer[cursor:start])
            cursor = start
            return replacement if read.inside else f'"{replacement}"'

        return place
