"""Streams that used to stall a replica: gateway CPU per MB, and /healthz latency while they run.

The mock replays each stream byte for byte (its scripted mode), 50 events per upstream write as seen
in the field; the gateway (default settings: redaction on, mask mode) relays it to one client. For
each kind the gateway's CPU time (utime + stime) over the stream is measured, and a prober sends
``GET /healthz`` every 10 ms throughout; its latencies give p50/p99/max.

Kinds: ordinary chat text, and the worst cases (25-character deltas without separators of hex,
digits, base64url, letters), all 1,600 events / 40 KB; then one event of 2 MB (prose, then hex),
next to whole-text redaction of the same text in-process.

    python bench/stream_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import orjson
from proxy_bench import cpu_seconds, free_port, start, stop

from llm_gateway.core.redaction import Redactor, Replacer

PROSE = (
    "Sure! Here is a summary of the meeting notes from Tuesday. The team agreed to ship version 2.4 by "
    "the end of the quarter, pending review of the open issues. Let me know if you need anything else. "
)
ALPHABETS = {
    "hex": "0123456789abcdef",
    "digits": string.digits,
    "base64url": string.ascii_letters + string.digits + "-_",
    "letters (no spaces)": string.ascii_letters,
}
ENVELOPE = {"id": "chatcmpl-b", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}


def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    return (
        b"data: "
        + orjson.dumps({**ENVELOPE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        + b"\n\n"
    )


def script(deltas: list[str]) -> dict[str, list[str]]:
    events = [chunk({"content": d}) for d in deltas] + [chunk({}, "stop")]
    writes = [b"".join(events[i : i + 50]) for i in range(0, len(events), 50)] + [b"data: [DONE]\n\n"]
    return {"writes": [w.decode() for w in writes]}


def kinds() -> dict[str, str]:
    """Kind -> the whole text of its stream (deltas are cut from it)."""
    rng = random.Random(1)
    texts = {"ordinary chat text": (PROSE * 400)[:40_000]}
    for name, alphabet in ALPHABETS.items():
        texts[name] = "".join(rng.choice(alphabet) for _ in range(40_000))
    return texts


class Prober(threading.Thread):
    """``GET /healthz`` every 10 ms until stopped; the latencies, in ms."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.latencies, self.stopped = url, [], threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self.stopped.is_set():
                started = time.perf_counter()
                client.get(self.url).raise_for_status()
                self.latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.01)


def measure(
    gateway: str, mock: str, pid: int, name: str, deltas: list[str], repeat: int
) -> tuple[float, list[float]]:
    """Median gateway CPU seconds for the stream, and the prober's latencies across all repeats."""
    key = f"s{abs(hash(name)) % 10**8}-{len(deltas)}"
    httpx.put(
        f"{mock}/_mock/scripts/{key}", content=orjson.dumps(script(deltas)), timeout=60
    ).raise_for_status()
    body = {"model": f"mock:script={key}", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    prober = Prober(gateway + "/healthz")
    prober.start()
    costs = []
    with httpx.Client(timeout=300) as client:
        for _ in range(repeat):
            before = cpu_seconds(pid)
            text = []
            with client.stream("POST", gateway + "/v1/chat/completions", json=body) as response:
                for line in response.iter_lines():
                    if line.startswith("data: {"):
                        for choice in orjson.loads(line[6:]).get("choices", []):
                            text.append(choice.get("delta", {}).get("content") or "")
            costs.append(cpu_seconds(pid) - before)
            assert len("".join(text)) == sum(map(len, deltas)), "the stream lost text"
    prober.stopped.set()
    prober.join()
    return statistics.median(costs), prober.latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    work = Path(tempfile.mkdtemp(prefix="stream-bench-"))
    mock_port, gateway_port = free_port(), free_port()
    mock = start(
        ["openaimock"], {"PORT": str(mock_port)}, f"http://127.0.0.1:{mock_port}/v1/models", work / "mock.log"
    )
    env = {"OPENAI_BASE_URL": f"http://127.0.0.1:{mock_port}", "OPENAI_API_KEY": "sk-bench",
           "LISTEN_ADDR": f"127.0.0.1:{gateway_port}", "RPS": "100000", "BURST": "100000",
           "DEFAULT_QUOTA": "1000000",
           "ACCESS_LOG": "off"}  # fmt: skip
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    gateway = start(["secure-llm-gateway"], env, gateway_url + "/healthz", work / "gateway.log")
    redactor = Redactor(Replacer("mask"))
    try:
        urllib.request.urlopen(gateway_url + "/healthz").read()
        print(
            "| stream | events | gateway CPU (ms) | CPU per MB (ms) | ÷ ordinary "
            "| /healthz p50 / p99 / max (ms) |"
        )
        print("|---|---|---|---|---|---|")
        ordinary = None
        for name, text in kinds().items():
            deltas = [text[i : i + 25] for i in range(0, len(text), 25)]
            cpu, latencies = measure(
                gateway_url, f"http://127.0.0.1:{mock_port}", gateway.pid, name, deltas, repeat
            )
            ordinary = ordinary or cpu
            q = _percentiles(latencies)
            print(f"| {name} | {len(deltas)} | {cpu * 1000:.0f} | {cpu * 1000 / (len(text) / 1e6):.0f} | "
                  f"{cpu / ordinary:.2f} | {q[49]:.1f} / {q[98]:.1f} / {max(latencies):.1f} |")  # fmt: skip
        print()
        print(
            "| one event of 2 MB | gateway CPU (ms) | whole-text redaction in-process (ms) | ratio "
            "| /healthz p99 / max (ms) |"
        )
        print("|---|---|---|---|---|")
        rng = random.Random(2)
        for name, text in {
            "prose": (PROSE * 11_000)[:2_000_000],
            "hex": "".join(rng.choice(ALPHABETS["hex"]) for _ in range(2_000_000)),
        }.items():
            cpu, latencies = measure(
                gateway_url, f"http://127.0.0.1:{mock_port}", gateway.pid, f"big-{name}", [text], repeat
            )
            whole = min(_timed(lambda: redactor.redact(text)) for _ in range(repeat))  # noqa: B023
            q = _percentiles(latencies)
            print(
                f"| {name} | {cpu * 1000:.0f} | {whole * 1000:.0f} | {cpu / whole:.2f} "
                f"| {q[98]:.1f} / {max(latencies):.1f} |"
            )
    finally:
        stop(gateway)
        stop(mock)


def _percentiles(latencies: list[float]) -> list[float]:
    if len(latencies) < 2:
        return latencies * 99
    return statistics.quantiles(latencies, n=100, method="inclusive")


def _timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
