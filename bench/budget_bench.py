"""What a token budget adds to a request's gateway CPU, over request quotas alone, against a real
redis-server (started here on a free loopback port, without persistence).

Per request with a budget: the reservation (:func:`reserve`), the admission script with a third key
and six more arguments (the same round trip), the settlement script after the answer (a second
round trip, on its own pipelined connection), and a stream's fragment count (:class:`StreamBudget`,
one JSON parse per event). Calls go out ``--concurrency`` at a time, as a loaded replica's do, and
what is measured is this process's CPU time (``time.process_time``) per request, not latency, less
the harness's own (a task per call, as ``asyncio.gather`` makes: a request's own task does the work
in the gateway).

    python bench/budget_bench.py [--requests 20000] [--concurrency 32] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator

import orjson

from llm_gateway.adapters.redis_store import RedisStore
from llm_gateway.core.apis import CHAT_COMPLETIONS
from llm_gateway.core.privacy import storage_id
from llm_gateway.core.quota import Decision, Limits
from llm_gateway.core.quota_policy import QuotaPolicy
from llm_gateway.core.sse import SSEEvent
from llm_gateway.core.token_budget import Reservation, TokenLimits, reserve

LIMITS = Limits(quota=10**12, window_secs=3600, rps=1e9, burst=10**9)
BUDGET = TokenLimits(10**15, None, None, 3600, 4096)
BODY = orjson.dumps(
    {"model": "gpt-4o-mini", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        raise SystemExit("redis-server is required (apt-get install -y redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


async def cpu_per_call(call: Callable[[int], Awaitable[object]], requests: int, concurrency: int) -> float:
    """Microseconds of this process's CPU per ``call``, ``concurrency`` in flight at a time."""
    for number in range(concurrency):  # warm: connections open, scripts loaded
        await call(number)
    started = time.process_time()
    for first in range(0, requests, concurrency):
        await asyncio.gather(*(call(n) for n in range(first, min(first + concurrency, requests))))
    return (time.process_time() - started) / requests * 1e6


async def measure(url: str, requests: int, concurrency: int) -> dict[str, float]:
    policy = QuotaPolicy(default_quota=10**12, tenant_quotas={}, window_secs=3600, rps=1e9, burst=10**9)
    store = RedisStore(
        url, timeout=5, policy=policy, on_error=lambda: None, storage_id=storage_id("standard", None)
    )
    payload = orjson.loads(BODY)
    decisions: dict[int, Decision] = {}

    async def nothing(n: int) -> None:
        pass

    async def quota_only(n: int) -> None:
        await store.admit(f"t{n % 64}", f"t{n % 64}", LIMITS)

    async def with_budget(n: int) -> None:
        reservation, _ = reserve(len(BODY), payload, CHAT_COMPLETIONS.output_limits, BUDGET)
        decisions[n % concurrency] = await store.admit(
            f"b{n % 64}", f"b{n % 64}", LIMITS, (BUDGET, reservation)
        )

    async def settle(n: int) -> None:
        await store.settle(f"b{n % 64}", decisions[n % concurrency], refund=False, charged=Reservation(1, 20))

    try:
        await store.start()
        harness = await cpu_per_call(nothing, requests, concurrency)  # the gather of one task per call
        results = {
            "admit, quota and rate limit": await cpu_per_call(quota_only, requests, concurrency),
            "admit, with a token reservation": await cpu_per_call(with_budget, requests, concurrency),
            "settle": await cpu_per_call(settle, requests, concurrency),
        }
        results = {name: value - harness for name, value in results.items()}
    finally:
        await store.close()
    return results


def stream_events_per_request(events: int = 20) -> float:
    """Microseconds to count the fragments of a 20-event chat stream (as the relay hands them over)."""
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [{"index": 0, "delta": {}}],
    }
    batch = []
    for number in range(events):
        chunk["choices"][0]["delta"] = {"content": f"word{number} "}  # type: ignore[index]
        batch.append(SSEEvent.of_data(orjson.dumps(chunk)))
    rounds = 5000
    started = time.process_time()
    for _ in range(rounds):
        CHAT_COMPLETIONS.stream_budget(10**6).process(batch)
    return (time.process_time() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with redis_server() as url:
        for rep in range(1, args.reps + 1):
            results = asyncio.run(measure(url, args.requests, args.concurrency))
            base = results["admit, quota and rate limit"]
            added = results["admit, with a token reservation"] - base + results["settle"]
            stream = stream_events_per_request()
            print(f"rep {rep}: " + ", ".join(f"{name} {value:.1f} µs" for name, value in results.items()))
            print(f"  budget adds {added:.1f} µs per request (+ {stream:.1f} µs per 20-event stream)")


if __name__ == "__main__":
    main()
