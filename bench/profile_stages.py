"""Where one request's CPU goes: a per-stage breakdown of the gateway under load, from py-spy samples.

Starts openaimock, a redis-server and the gateway in the configuration users run (Redis quotas and
rate limit, redaction, metrics and the access log on; tracing off), pinned as ``proxy_bench.py``
pins them, drives it with wrk (``bench/chat.lua``, non-stream or stream) and samples the gateway
with ``py-spy record`` (native frames off). Each sample is given to the innermost frame that belongs
to a stage below, so the stages add up to the CPU the gateway spent (py-spy samples only a thread
that is running); ``other`` is what no stage claims.

    python bench/profile_stages.py [--duration 15] [--concurrency 64] [--stream] [--py-spy PATH]

py-spy is not a dependency of the project: give its path (``pip install py-spy`` anywhere).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proxy_bench import CLK_TCK, OUT, free_port, pinned, redis_server_args, run_wrk, start, stop

#: Stages, innermost first: a sample goes to the first stage with a frame on its stack, looked for
#: from the innermost frame outwards. Each is (name, substrings of "function (file)" frames).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("redaction", ("llm_gateway/core/redaction/", "hyperscan", "regex/")),
    ("json parse/dump", ("json_codec", "chat_request", "json_bounds", "orjson")),
    ("redis client", ("redis/", "hiredis", "adapters/redis_store")),
    ("upstream client (aiohttp)", ("aiohttp/", "yarl/", "multidict/", "adapters/upstream")),
    ("metrics", ("prometheus_client/", "telemetry/metrics", "telemetry/labels")),
    ("access log", ("logging/", "telemetry/logs")),
    ("telemetry (exchange, recorder)", ("telemetry/",)),
    ("request body", ("api/request_body",)),
    ("sse/usage", ("core/sse", "core/usage")),
    ("relay", ("api/relay",)),
    ("admission/quota", ("api/admission", "core/quota", "api/identity", "core/tenant", "core/privacy")),
    ("chat endpoint", ("api/chat",)),
    ("server (uvicorn, httptools)", ("uvicorn/", "httptools", "h11/", "starlette/")),
    ("event loop (asyncio)", ("asyncio/", "uvloop")),
)


_RATE = 250  # samples per second


def stage_of(stack: list[str]) -> str:
    """The stage of one sample (``stack``: frames, outermost first)."""
    for frame in reversed(stack):
        for name, markers in STAGES:
            if any(marker in frame for marker in markers):
                return name
    return "other"


def native_thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``'s native threads, by thread name (``/proc``).

    py-spy samples only threads that run Python (they keep the process's name); native ones (uvloop's
    ``libuv-worker``, the runtime of a Rust HTTP client such as pyreqwest's) are read here instead.
    """
    used: dict[str, float] = {}
    python = Path(f"/proc/{pid}/comm").read_text().strip()
    for task in Path(f"/proc/{pid}/task").iterdir():
        name = (task / "comm").read_text().strip()
        if name == python:
            continue
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        used[name] = used.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return used


def breakdown(collapsed: Path) -> Counter[str]:
    """Samples per stage from py-spy's raw (collapsed) output."""
    counts: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[stage_of(stack.split(";"))] += int(count)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="path of the py-spy binary")
    parser.add_argument("--env", action="append", default=[], help="extra gateway setting KEY=VALUE")
    args = parser.parse_args()
    if not args.py_spy:
        raise SystemExit("py-spy is missing: pip install py-spy, then --py-spy PATH")
    two_cores = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    load_cpu, gateway_cpu = (0, 1) if two_cores else (None, None)
    OUT.mkdir(exist_ok=True)
    mock_port, gateway_port, redis_port = free_port(), free_port(), free_port()
    python = sys.executable
    redis_server = subprocess.Popen(
        pinned(load_cpu, redis_server_args(redis_port)), stdout=subprocess.DEVNULL
    )
    mock = start(
        pinned(load_cpu, [python, "-m", "openaimock"]),
        {"PORT": str(mock_port), "INTER_TOKEN_MS": "0", "LATENCY_MS": "0"},
        f"http://127.0.0.1:{mock_port}/v1/models",
        OUT / "openaimock.log",
    )
    gateway = start(
        pinned(gateway_cpu, [python, "-m", "llm_gateway"]),
        {
            "LISTEN_ADDR": f"127.0.0.1:{gateway_port}",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{mock_port}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "DEFAULT_QUOTA": "1000000000",
            "RPS": "1000000000",
            "BURST": "1000000000",
            **dict(item.split("=", 1) for item in args.env),
        },
        f"http://127.0.0.1:{gateway_port}/healthz",
        OUT / "gateway.log",
    )
    collapsed = OUT / "profile.txt"
    url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
    try:
        run_wrk(url, args.stream, 16, 2, load_cpu)  # warm-up
        spy = subprocess.Popen(
            [args.py_spy, "record", "--pid", str(gateway.pid), "--duration", str(args.duration),
             "--rate", str(_RATE), "--format", "raw", "--output", str(collapsed), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        time.sleep(0.5)
        threads_before = native_thread_cpu(gateway.pid)
        result = run_wrk(url, args.stream, args.concurrency, args.duration, load_cpu)
        threads_after = native_thread_cpu(gateway.pid)
        spy.wait(args.duration + 30)
    finally:
        stop(gateway)
        stop(mock)
        stop(redis_server)
    counts = breakdown(collapsed)
    busy = sum(counts.values())
    requests = max(result["requests"], 1)

    def ms(samples: int) -> float:  # sampled CPU per request
        return samples / _RATE / requests * 1000

    print(f"{'stream' if args.stream else 'non-stream'} c={args.concurrency}: {requests} requests, {busy} "
          f"samples at {_RATE} Hz: ~{ms(busy):.3f} ms of CPU per request\n")  # fmt: skip
    print("| stage | share of samples | ~ms per request |")
    print("|---|---|---|")
    for stage, n in counts.most_common():
        print(f"| {stage} | {n / busy:.1%} | {ms(n):.3f} |")
    for name, seconds in sorted(threads_after.items()):
        used = seconds - threads_before.get(name, 0.0)
        print(f"| native thread `{name}` (not sampled; from /proc) | | {used / requests * 1000:.3f} |")
    print(f"\nraw stacks: {collapsed}")


if __name__ == "__main__":
    main()
