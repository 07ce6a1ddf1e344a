"""What a stream holds is bounded, and long runs without separators stream like whole text."""

from __future__ import annotations

import random
import string
from concurrent.futures import ThreadPoolExecutor

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.core.redaction import Redactor, Replacer, StreamRedactor
from llm_gateway.core.redaction.detectors import build_detectors
from llm_gateway.core.redaction.engine import TAIL_SPAN

REDACTOR = Redactor(Replacer("hash", b"k"))  # hash mode: a run's identity must agree in both modes

# Runs without separators, the shapes a model prints (hashes, hex dumps, digits, tokens).
ALPHABETS = {
    "hex": "0123456789abcdef",
    "digits": string.digits,
    "base64url": string.ascii_letters + string.digits + "-_",
    "letters": string.ascii_letters,
    "upper": string.ascii_uppercase + string.digits,
}


def run(alphabet: str, length: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


def streamed(text: str, size: int) -> tuple[str, int]:
    stream = StreamRedactor(REDACTOR)
    out, most_held = [], 0
    for start in range(0, len(text), size):
        out.append(stream.feed(text[start : start + size]))
        most_held = max(most_held, len(text[: start + size]) - stream.released)
    out.append(stream.flush())
    return "".join(out), most_held


@pytest.mark.parametrize("alphabet", ALPHABETS)
@pytest.mark.parametrize("prefix", ["", "sk-", "key ", "jane@", "eyJ", "+", "SSN "])
def test_a_long_run_holds_at_most_the_bound_and_equals_whole_text(alphabet: str, prefix: str) -> None:
    text = prefix + run(ALPHABETS[alphabet], 20_000) + " end"
    out, most_held = streamed(text, 25)
    assert out == REDACTOR.redact(text)
    assert most_held <= REDACTOR.max_hold + 25


def test_the_issue_example_hex_stream_is_released_as_it_comes() -> None:
    # 1,600 deltas of 25 hex characters: the text goes out with (at most a bound behind) the deltas.
    stream = StreamRedactor(REDACTOR)
    released = 0
    for n in range(1600):
        released += len(stream.feed(run(ALPHABETS["hex"], 25, seed=n)))
        assert (n + 1) * 25 - released <= 64 + 25  # an e-mail local part is the longest hex can be held
    assert released + len(stream.flush()) == 40_000


def test_a_secret_longer_than_its_bound_is_redacted_once_and_its_run_swallowed() -> None:
    text = "token sk-" + "a" * 5000 + " next"
    out, most_held = streamed(text, 7)
    assert out == REDACTOR.redact(text) and out.count("[SECRET:") == 1 and out.endswith(" next")
    assert most_held <= 256 + 7


@settings(max_examples=300, deadline=None)
@given(
    alphabet=st.sampled_from(sorted(ALPHABETS)),
    length=st.integers(300, 3000),
    size=st.integers(1, 400),
    prefix=st.sampled_from(["", "sk-", "ghp_", "a@", "eyJ", "4", "SSN ", "tel "]),
)
def test_adversarial_runs_stream_like_whole_text(alphabet: str, length: int, size: int, prefix: str) -> None:
    text = prefix + run(ALPHABETS[alphabet], length, seed=length) + "."
    assert streamed(text, size)[0] == REDACTOR.redact(text)


@pytest.mark.parametrize(
    "detector",
    [d for d in build_detectors() if d.run is None and not d.pattern.startswith("(?<=")],
    ids=lambda d: d.pattern[:30],
)
def test_no_partial_match_outgrows_its_detectors_bound(detector: object) -> None:
    # (Detectors whose context is a look-behind are left out: past a failed look-behind the regex
    # module reports the rest of the text as a partial match. The engine searches them partially
    # only within max_len of the end; the streaming tests cover them.)
    pattern = regex.compile(detector.pattern)  # type: ignore[attr-defined]
    for alphabet in [*ALPHABETS.values(), "1234567890 -", "abc.@-", "0123456789abcdefABCDEF:"]:
        for seed in range(20):
            text = run(alphabet, 2000, seed)
            for match in pattern.finditer(text, partial=True):
                assert len(match.group()) <= detector.max_len  # type: ignore[attr-defined]


def test_threads_redacting_long_texts_at_once_get_the_same_results() -> None:
    # The relay redacts large batches in worker threads; the prefilter's scratch space is per thread.
    texts = [
        run(ALPHABETS[name], 50_000, seed) + " mail jane@example.com" for seed, name in enumerate(ALPHABETS)
    ]
    expected = [REDACTOR.redact(text) for text in texts]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            assert list(pool.map(REDACTOR.redact, texts)) == expected


@pytest.mark.parametrize("detector", [d for d in build_detectors() if d.tail], ids=lambda d: d.pattern[:30])
def test_a_partial_match_without_its_trigger_fits_the_tail_window(detector: object) -> None:
    pattern, trigger = regex.compile(detector.pattern), regex.compile(detector.trigger)  # type: ignore[attr-defined]
    texts = [
        run(alphabet, 300, seed) for alphabet in [*ALPHABETS.values(), "abc .@-+(:"] for seed in range(10)
    ]
    texts += ["x " + word[:n] for word in ("sk-proj-", "github_pat_", "aws_secret", "social sec", "whatsapp",
              "-----BEGIN", "eyJ", "jane.doe.smith") for n in range(1, len(word))]  # fmt: skip
    for text in texts:
        for end in range(1, len(text) + 1):
            match = pattern.search(text[:end], partial=True)
            while match is not None and not match.partial:
                match = pattern.search(text[:end], match.end(), partial=True)
            if match is not None and not trigger.search(match.group()):
                assert len(match.group()) <= detector.tail_len, (text[:end], match.group())  # type: ignore[attr-defined]
            tail = regex.search(detector.tail, text[:end])  # type: ignore[attr-defined]
            assert tail is None or len(tail.group()) <= TAIL_SPAN  # the engine looks only that far back
