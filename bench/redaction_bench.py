"""Redaction throughput: whole text, 4-byte streamed fragments, and per SSE event.

Realistic chat text: assistant-style prose with the numbers such text carries (versions, times,
dates, prices, counts) and one email, one card number and one phone number per ~1.3 KB paragraph.

    python bench/redaction_bench.py [--kb 640]
"""

from __future__ import annotations

import argparse
import time

import orjson

from llm_gateway.core.redaction import Redactor, Replacer, SSERedactor, StreamRedactor
from llm_gateway.core.sse import SSEEvent

PROSE = (
    "Sure! Here is a summary of the meeting notes from Tuesday. The team agreed to ship version 2.4 by "
    "the end of the quarter, pending review of the 3 open issues. The project lead is available at "
    "09:30 for details; the budget is $12,500 and the deadline is 2024-06-30. Let me know if you need "
    "anything else, and have a great day. "
)
PII = (
    "You can reach Jane at jane.doe@example.com or +1 415 555 2671; the card on file is 4242 4242 4242 4242. "
)


def corpus(kilobytes: int, with_pii: bool) -> str:
    paragraph = PROSE * 3 + (PII if with_pii else PROSE)
    return (paragraph * (kilobytes * 1024 // len(paragraph) + 1))[: kilobytes * 1024]


def rate(label: str, size: int, seconds: float, extra: str = "") -> None:
    print(f"| {label} | {size / seconds / 1e6:.1f} MB/s | {extra} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=int, default=640)
    args = parser.parse_args()
    redactor = Redactor(Replacer("mask"))
    print("| case | throughput | detail |\n|---|---|---|")
    for with_pii in (False, True):
        text = corpus(args.kb, with_pii)
        label = "with PII" if with_pii else "no PII"
        started = time.perf_counter()
        whole = redactor.redact(text)
        rate(f"whole text, {label}", len(text), time.perf_counter() - started)
        fragments = [text[i : i + 4] for i in range(0, len(text) // 4 * 4, 4)][:50_000]
        stream = StreamRedactor(redactor)
        started = time.perf_counter()
        out = "".join(stream.feed(f) for f in fragments) + stream.flush()
        seconds = time.perf_counter() - started
        assert out == redactor.redact("".join(fragments))
        rate(
            f"streamed in 4-byte fragments, {label}",
            4 * len(fragments),
            seconds,
            f"{seconds / len(fragments) * 1e6:.1f} µs per fragment",
        )
        assert whole.count("@") <= text.count("@")
    # Per SSE event: one chat-completion chunk per word, as an LLM streams them.
    words = corpus(64, True).split(" ")
    events = [
        SSEEvent.of_data(
            orjson.dumps(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "m",
                    "choices": [{"index": 0, "delta": {"content": w + " "}, "finish_reason": None}],
                }
            )
        )
        for w in words
    ]
    sse = SSERedactor(redactor)
    started = time.perf_counter()
    for event in events:
        sse.process([event])
    seconds = time.perf_counter() - started
    print(
        f"| SSE chunk events (one word each), one per read | {len(events) / seconds:,.0f} events/s | "
        f"{seconds / len(events) * 1e6:.1f} µs per event |"
    )
    # Under load an upstream read often hands over several events: 24, as in a short completion.
    sse = SSERedactor(redactor)
    started = time.perf_counter()
    for start in range(0, len(events), 24):
        sse.process(events[start : start + 24])
    seconds = time.perf_counter() - started
    print(
        f"| SSE chunk events (one word each), 24 per read | {len(events) / seconds:,.0f} events/s | "
        f"{seconds / len(events) * 1e6:.1f} µs per event |"
    )


if __name__ == "__main__":
    main()
