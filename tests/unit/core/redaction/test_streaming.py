"""Streaming equals whole-text redaction, for any text and any split of it."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.redaction import Entity, Redactor, Replacer, StreamRedactor
from tests.unit.core.redaction.test_detectors import NEGATIVES, POSITIVES

REDACTOR = Redactor(Replacer("placeholder"))

# Text built from pieces that look like entities (or nearly do) and ordinary prose, so random
# splits land inside real candidates, not only inside noise.
PIECES = (
    [value for _, value in POSITIVES]
    + NEGATIVES
    + [
        " ",
        ", ",
        ". ",
        "\n",
        "jane.do",
        "e@example.com",
        "4242 4242",
        " 4242 4242",
        "-",
        "@",
        "+1 ",
        "415",
        "Hello",
        "world",
        "sk-",
        "proj-",
        "abc",
        "::",
        "1.",
        "2001:db8",
    ]
)
TEXTS = st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=12).map("".join)


def stream(text: str, cuts: list[int]) -> tuple[str, Counter[Entity]]:
    redactor = StreamRedactor(REDACTOR)
    out, start = [], 0
    for cut in sorted(set(cuts)):
        out.append(redactor.feed(text[start:cut]))
        start = cut
    out.append(redactor.feed(text[start:]))
    out.append(redactor.flush())
    return "".join(out), redactor.found


@settings(max_examples=600, deadline=None)
@given(data=st.data(), text=TEXTS)
def test_any_split_streams_to_the_whole_text_result(data: st.DataObject, text: str) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=len(text)))
    found: Counter[Entity] = Counter()
    whole = REDACTOR.redact(text, found)
    streamed, streamed_found = stream(text, cuts)
    assert streamed == whole
    assert streamed_found == found


@settings(max_examples=200, deadline=None)
@given(text=TEXTS)
def test_one_character_fragments(text: str) -> None:
    assert stream(text, list(range(len(text))))[0] == REDACTOR.redact(text)


def test_empty_fragments_keep_the_context_a_look_behind_needs() -> None:
    # An address cannot start right after "*" (a mask's character), so this text holds none.
    redactor = StreamRedactor(REDACTOR)
    out = redactor.feed("a *") + redactor.feed("") + redactor.feed("jane@example.com")
    assert out + redactor.flush() == REDACTOR.redact("a *jane@example.com") == "a *jane@example.com"


def test_email_split_across_fragments_is_redacted() -> None:
    redactor = StreamRedactor(REDACTOR)
    out = redactor.feed("Write to jane.do") + redactor.feed("e@example.com today") + redactor.flush()
    assert out == "Write to [EMAIL] today"


def test_plain_words_are_released_in_the_fragment_they_arrive_in() -> None:
    redactor = StreamRedactor(REDACTOR)
    assert redactor.feed("Hello ") == "Hello "
    assert redactor.feed("there, how are you? ") == "there, how are you? "


def test_only_the_possible_entity_start_is_held() -> None:
    redactor = StreamRedactor(REDACTOR)
    assert redactor.feed("Write to jane.do") == "Write to "
    assert redactor.flush() == "jane.do"


MASK = Redactor(Replacer("mask"))


@settings(max_examples=400, deadline=None)
@given(text=st.lists(st.sampled_from(PIECES), max_size=12).map(" ".join))
def test_masking_twice_changes_nothing_more(text: str) -> None:
    # Conversations send earlier (already masked) turns back: they must not be mangled further.
    # (Words are space-separated here: a mask glued to other text can form a new candidate.)
    once = MASK.redact(text)
    assert MASK.redact(once) == once


LONG_TEXTS = st.lists(st.sampled_from(PIECES), min_size=150, max_size=400).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(text=LONG_TEXTS)
def test_the_hyperscan_prefilter_for_long_text_changes_no_result(text: str) -> None:
    assert len(text) >= 1024
    # redact() takes the prefiltered path for long ASCII text; scan() on a stream's flush the plain one.
    plain = REDACTOR.scan(text, 0, final=False, found=None).text
    stream = StreamRedactor(REDACTOR)
    assert stream.feed(text) + stream.flush() == REDACTOR.redact(text)
    assert REDACTOR.redact(text).startswith(plain)


def test_long_non_ascii_text_is_redacted_without_the_prefilter() -> None:
    text = "é " * 600 + "mail jane@example.com ٤٢٤٢"
    assert REDACTOR.redact(text).endswith("mail [EMAIL] ٤٢٤٢")
