"""The redaction engine: regex candidates, validators, whole-text and streaming (pure).

Both modes run the same scan, so streaming a text in any fragments yields exactly what redacting
it whole does. The streaming side uses the ``regex`` module's partial matching: a candidate that
reaches the end of the text received so far (or only a prefix of one, such as ``jane.do``) is held
back, and everything before it is released at once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import hyperscan
import regex

from llm_gateway.core.redaction.detectors import DETECTORS, Detector, prefilter_pattern
from llm_gateway.core.redaction.entities import Entity
from llm_gateway.core.redaction.replacement import Replacer

__all__ = ["Redactor", "StreamRedactor"]

#: Below this many characters the per-detector checks are cheaper than a hyperscan call.
_PREFILTER_MIN = 1024

#: Every detector's look-behind inspects one character, so a stream keeps one released character
#: of context before the text it holds.
_CONTEXT = 1


class Redactor:
    """Redacts ``entities`` (all by default) with ``replacer``. Stateless: share one per process.

    Each detector searches on its own (a combined alternation defeats the regex engine's literal
    and first-character optimisations and ran 5 to 30 times slower); their candidates are merged so that
    the result is the same as one alternation would give: the leftmost candidate wins, ties go to
    the detector listed first, and a candidate that fails validation lets a later detector's
    candidate at the same place have its turn.
    """

    def __init__(self, replacer: Replacer, entities: Iterable[Entity] | None = None) -> None:
        wanted = set(Entity) if entities is None else set(entities)
        self._detectors = tuple(d for d in DETECTORS if d.entity in wanted)
        self._patterns = tuple(regex.compile(d.pattern) for d in self._detectors)
        self._triggers = tuple(re.compile(d.trigger) for d in self._detectors)
        self._tails = tuple(re.compile(d.tail) if d.tail else None for d in self._detectors)
        # The same checks for all detectors at once: most text (and most streamed words) fails both,
        # and then costs two C-level scans.
        self._any_trigger = re.compile("|".join(d.trigger for d in self._detectors) or "(?!)")
        self._any_tail = re.compile("|".join(d.tail for d in self._detectors if d.tail) or "(?!)")
        self._prefilter = _Prefilter(self._detectors) if self._detectors else None
        self._replace = replacer

    def inert(self, fragment: str) -> bool:
        """True when no detector can match in ``fragment`` or have a partial match end with it."""
        return not self._any_trigger.search(fragment) and not self._any_tail.search(fragment)

    def _may_match(self, i: int, text: str, pos: int, partial: bool) -> bool:
        if self._triggers[i].search(text, pos):
            return True
        tail = self._tails[i]
        return partial and tail is not None and tail.search(text, pos) is not None

    def redact(self, text: str, found: Counter[Entity] | None = None) -> str:
        """``text`` with every entity replaced; adds what it replaced to ``found``."""
        out, _ = self.scan(text, 0, final=True, found=found)
        return out

    def scan(self, text: str, pos: int, *, final: bool, found: Counter[Entity] | None) -> tuple[str, int]:
        """Redact ``text[pos:]`` up to the first place that more text could still change.

        Returns the redacted safe part and the index in ``text`` where the held part begins
        (``len(text)`` when ``final`` or when nothing needs holding).
        """
        partial = not final
        length = len(text)
        if not self._any_trigger.search(text, pos) and not (partial and self._any_tail.search(text, pos)):
            return text[pos:], length
        if final and self._prefilter is not None and length - pos >= _PREFILTER_MIN and text.isascii():
            active = self._prefilter.candidates(text, pos)
        else:
            active = [i for i in range(len(self._detectors)) if self._may_match(i, text, pos, partial)]
        nexts: dict[int, regex.Match[str] | None] = {}
        parts: list[str] = []
        emitted = pos
        end = length
        while True:
            for i in active:
                if i not in nexts or ((current := nexts[i]) is not None and current.start() < pos):
                    nexts[i] = self._patterns[i].search(text, pos, partial=partial)
            ranked = sorted((m.start(), i) for i, m in nexts.items() if m is not None)
            if not ranked:
                break
            start = ranked[0][0]
            hit: tuple[Entity, str] | None = None
            hold = False
            for candidate_start, i in ranked:
                if candidate_start != start:
                    break
                match = nexts[i]
                assert match is not None
                # If the rest of the text could still be the start of a longer match (`jane.doe@x.co`
                # before the `m`), more text may change this candidate: hold it.
                if partial and (match.partial or self._patterns[i].fullmatch(text, start, partial=True)):
                    hold = True
                    break
                if self._detectors[i].validate(match.group()):
                    hit = (self._detectors[i].entity, match.group())
                    break
            if hold:
                end = start
                break
            if hit is None:  # every candidate here failed validation: skip the first one
                first = nexts[ranked[0][1]]
                assert first is not None
                pos = first.end()
                continue
            entity, value = hit
            parts.append(text[emitted:start])
            parts.append(self._replace(entity, value))
            if found is not None:
                found[entity] += 1
            emitted = pos = start + len(value)
        parts.append(text[emitted:end])
        return "".join(parts), end


class _Prefilter:
    """One hyperscan pass that tells which detectors have any candidate in a text at all.

    A long text without a single candidate (most text) then costs this pass and nothing more.
    """

    def __init__(self, detectors: tuple[Detector, ...]) -> None:
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=[prefilter_pattern(d) for d in detectors],
            ids=list(range(len(detectors))),
            elements=len(detectors),
            flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(detectors),
        )
        self._scratch = hyperscan.Scratch(self._db)

    def candidates(self, text: str, pos: int) -> list[int]:
        """Indexes of the detectors that may match in ``text[pos:]`` (ASCII text only)."""
        found: set[int] = set()

        def on_match(index: int, start: int, end: int, flags: int, context: object) -> None:
            found.add(index)

        self._db.scan(text[pos:].encode("ascii"), match_event_handler=on_match, scratch=self._scratch)
        return sorted(found)


class StreamRedactor:
    """Sans-I/O streaming redaction: ``feed(fragment)`` returns the text now safe to release,
    ``flush()`` the rest at the end. Concatenated, the outputs equal ``redactor.redact(whole)``.

    ``found`` counts the entities replaced so far.
    """

    __slots__ = ("_buffer", "_held_from", "_redactor", "found")

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._buffer = ""
        self._held_from = 0
        self.found: Counter[Entity] = Counter()

    def feed(self, fragment: str) -> str:
        if not fragment:
            return ""
        if self._held_from == len(self._buffer) and self._redactor.inert(fragment):
            # Nothing held and nothing here can be or start an entity: release as is, keep context.
            self._buffer = fragment[-_CONTEXT:]
            self._held_from = len(self._buffer)
            return fragment
        self._buffer += fragment
        return self._release(final=False)

    def flush(self) -> str:
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        out, held = self._redactor.scan(self._buffer, self._held_from, final=final, found=self.found)
        keep_from = max(held - _CONTEXT, 0)
        self._buffer = self._buffer[keep_from:]
        self._held_from = held - keep_from
        return out
