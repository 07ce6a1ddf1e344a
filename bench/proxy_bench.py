"""Proxy overhead benchmark: direct to openaimock vs through the gateway.

Starts openaimock (``INTER_TOKEN_MS=0``) and the gateway as real processes, pinned with taskset when
the machine has two cores or more (mock and load generator on core 0, gateway alone on core 1),
then runs wrk (``bench/chat.lua``) against each target, non-stream and stream, at each concurrency.
Prints a Markdown table with requests/s, p50/p99 latency, the gateway's CPU per request, and the
ratios gateway/direct. Every run is bounded by ``--duration``; only 127.0.0.1 is contacted.

``--api`` picks the API loaded (``chat``, the default; ``responses``, ``completions``,
``embeddings`` (no streams) or ``messages``, which the gateway routes to the mock as an Anthropic
upstream). ``--base REV`` is the regression gate: the gateway of an earlier commit (checked out in a temporary
git worktree, run with this tree's virtualenv) is measured beside this tree's in the same run,
interleaved within each repetition, and a last table gives this tree / base for every figure, with
the drops over 10 % marked.

    python bench/proxy_bench.py [--duration 10] [--concurrency 1 64] [--reps 1] [--env KEY=VALUE ...]
    python bench/proxy_bench.py --base HEAD~1 --reps 2
    python bench/proxy_bench.py --api messages
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUA = HERE / "chat.lua"
OUT = HERE / "out"  # process logs of the last run (git-ignored)
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Point:
    rep: int
    target: str
    mode: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_req: float
    bad: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int | None, args: list[str]) -> list[str]:
    return args if cpu is None else ["taskset", "-c", str(cpu), *args]


def redis_server_args(port: int) -> list[str]:
    """A throwaway redis-server on 127.0.0.1:``port`` (no persistence)."""
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


def start(args: list[str], env: dict[str, str], ready_url: str, log: Path) -> subprocess.Popen[bytes]:
    """Start a process logging to ``log`` (a file, never a pipe nobody drains) and wait until it serves."""
    with log.open("wb") as sink:
        proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{args} exited:\n{log.read_text()}")
        try:
            urllib.request.urlopen(ready_url, timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{args} not ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


#: Each API's path (on the mock and the gateway alike), and whether it streams.
APIS = {
    "chat": ("/v1/chat/completions", True),
    "responses": ("/v1/responses", True),
    "completions": ("/v1/completions", True),
    "embeddings": ("/v1/embeddings", False),
    "messages": ("/v1/messages", True),
}


def run_wrk(
    url: str, stream: bool, concurrency: int, duration: int, cpu: int | None, api: str = "chat"
) -> dict[str, int]:
    args = pinned(
        cpu, ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s", "-s", str(LUA), url]
    )
    out = subprocess.run(
        args,
        env={**os.environ, "STREAM": "1" if stream else "0", "API": api},
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    match = re.search(r"^BENCH (.*)$", out, re.M)
    if not match:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    return {key: int(value) for key, value in (item.split("=") for item in match.group(1).split())}


def measure(
    rep: int, name: str, url: str, pid: int, args: argparse.Namespace, load_cpu: int | None
) -> list[Point]:
    run_wrk(url, False, 16, 2, load_cpu, args.api)  # warm-up: connection pools, caches
    points = []
    for stream in (False, True) if APIS[args.api][1] else (False,):
        for concurrency in args.concurrency:
            before = cpu_seconds(pid)
            result = run_wrk(url, stream, concurrency, args.duration, load_cpu, args.api)
            used = cpu_seconds(pid) - before
            requests = max(result["requests"], 1)
            points.append(
                Point(
                    rep=rep,
                    target=name,
                    mode="stream" if stream else "non-stream",
                    concurrency=concurrency,
                    rps=requests / (result["duration_us"] / 1e6),
                    p50_ms=result["p50_us"] / 1000,
                    p99_ms=result["p99_us"] / 1000,
                    cpu_ms_per_req=used * 1000 / requests,
                    bad=result["bad"] + result["errors"],
                )
            )
    return points


def table(points: list[Point]) -> str:
    lines = [
        "| rep | target | mode | c | req/s | p50 ms | p99 ms | CPU ms/req | bad |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        lines.append(
            f"| {p.rep} | {p.target} | {p.mode} | {p.concurrency} | {p.rps:,.0f} | {p.p50_ms:.2f} "
            f"| {p.p99_ms:.2f} | {p.cpu_ms_per_req:.3f} | {p.bad} |"
        )
    direct = {(p.rep, p.mode, p.concurrency): p for p in points if p.target == "direct"}
    lines += [
        "",
        "| rep | target | mode | c | target/direct req/s | added p50 ms | target CPU ms/req |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in points:
        if p.target != "direct":
            d = direct[(p.rep, p.mode, p.concurrency)]
            lines.append(
                f"| {p.rep} | {p.target} | {p.mode} | {p.concurrency} | {p.rps / d.rps:.2f} "
                f"| {p.p50_ms - d.p50_ms:.2f} "
                f"| {p.cpu_ms_per_req:.3f} |"
            )
    return "\n".join(lines)


#: A drop larger than this (this tree / base) is marked in the regression table.
REGRESSION = 0.10


def regression_table(points: list[Point], base: str) -> str:
    """This tree's figures over the base's, per variant, mode and concurrency (mean over repetitions)."""

    def mean(target: str, mode: str, concurrency: int, field: str) -> float:
        values = [
            getattr(p, field)
            for p in points
            if (p.target, p.mode, p.concurrency) == (target, mode, concurrency)
        ]
        return sum(values) / len(values)

    lines = [
        f"| variant | mode | c | req/s head/base | p50 head/base | CPU ms/req head/base | (base = {base}) |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(p.target, p.mode, p.concurrency) for p in points if p.target.startswith("base:")})
    for based, mode, concurrency in keys:
        target = based.removeprefix("base:")
        ratios = {
            field: mean(target, mode, concurrency, field) / mean(based, mode, concurrency, field)
            for field in ("rps", "p50_ms", "cpu_ms_per_req")
        }
        worse = ratios["rps"] < 1 - REGRESSION or any(
            ratios[field] > 1 + REGRESSION for field in ("p50_ms", "cpu_ms_per_req")
        )
        lines.append(
            f"| {target} | {mode} | {concurrency} | {ratios['rps']:.2f} | {ratios['p50_ms']:.2f} "
            f"| {ratios['cpu_ms_per_req']:.2f} | {'**over 10 % worse**' if worse else ''} |"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """A temporary detached git worktree of ``revision``, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="bench-base-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(path), revision],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
            capture_output=True,
            timeout=120,
        )


def redis_round_trips(port: int) -> int:
    """Commands clients sent to the redis-server on ``port`` (calls from inside scripts not counted)."""
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "INFO", "commandstats"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    calls = {name: int(n) for name, n in re.findall(r"cmdstat_(\w+):calls=(\d+)", out)}
    return sum(n for name, n in calls.items() if name not in _SCRIPT_COMMANDS)


# Commands that the gateway's scripts run inside Redis; INFO counts them, but they cost no round trip.
_SCRIPT_COMMANDS = {"get", "set", "incr", "pttl", "pexpire", "time", "zadd", "zremrangebyscore", "zcard"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per point")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--redis", action="store_true", help="also run the gateway with a redis-server store")
    parser.add_argument("--env", action="append", default=[], help="extra gateway setting KEY=VALUE")
    parser.add_argument(
        "--otlp",
        action="store_true",
        help="also run the gateway exporting traces: to an OTLP receiver, and to an absent collector",
    )
    parser.add_argument("--base", help="also measure the gateway of this earlier commit, and compare")
    parser.add_argument("--api", choices=sorted(APIS), default="chat", help="the API to load (default chat)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(worktree(args.base)) if args.base else None
        run(args, base)


def run(args: argparse.Namespace, base: Path | None) -> None:
    """Measure direct, this tree's gateway variants and (with ``base``) the base's gateway."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    two_cores = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    load_cpu, gateway_cpu = (0, 1) if two_cores else (None, None)
    python = sys.executable
    OUT.mkdir(exist_ok=True)
    mock_port, gateway_port, redis_port, otlp_port = free_port(), free_port(), free_port(), free_port()
    collector = None
    if args.otlp:
        # The receiver decodes every export (as a collector would), on the load generator's core.
        collector = start(
            pinned(load_cpu, [python, str(ROOT / "tests" / "otlp_receiver.py"), str(otlp_port)]),
            {},
            f"http://127.0.0.1:{otlp_port}/",
            OUT / "otlp_receiver.log",
        )
    mock = start(
        pinned(load_cpu, [python, "-m", "openaimock"]),
        {"PORT": str(mock_port), "INTER_TOKEN_MS": "0", "LATENCY_MS": "0"},
        f"http://127.0.0.1:{mock_port}/v1/models",
        OUT / "openaimock.log",
    )
    # Quotas and rate limits are evaluated on every request but set high enough never to refuse:
    # the benchmark prices the check, and any non-200 counts as "bad".
    gateway_env = {
        "LISTEN_ADDR": f"127.0.0.1:{gateway_port}",
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{mock_port}",
        "LOG_LEVEL": "warning",
        "DEFAULT_QUOTA": "1000000000",
        "RPS": "1000000000",
        "BURST": "1000000000",
        **dict(item.split("=", 1) for item in args.env),
    }
    if args.api == "messages":  # the mock, declared again as an Anthropic upstream
        routing = OUT / "routing.yaml"
        upstream = f"{{name: claude, kind: anthropic, base_url: 'http://127.0.0.1:{mock_port}'"
        routing.write_text(
            f"upstreams:\n  - {upstream}, api_key_env: OPENAI_API_KEY}}\n"
            "routes:\n  - {model: 'claude-*', upstream: claude}\n"
        )
        gateway_env["ROUTING_FILE"] = str(routing)
    variants = {"gateway": gateway_env}
    if args.otlp:
        variants["gateway+otlp"] = {
            **gateway_env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
        }
        variants["gateway+otlp-down"] = {
            **gateway_env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        }
    redis_server = None
    if args.redis:
        redis_server = subprocess.Popen(
            pinned(load_cpu, redis_server_args(redis_port)),
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        variants["gateway+redis"] = {**gateway_env, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    if base is not None:  # each variant again with the base's code (and this tree's virtualenv)
        code = {"PYTHONPATH": f"{base / 'service'}{os.pathsep}{base}"}
        variants = {  # interleaved: each of this tree's variants, then the same with the base's code
            key: value
            for name, env in variants.items()
            for key, value in ((name, env), (f"base:{name}", {**env, **code}))
        }
    points: list[Point] = []
    notes = []
    try:
        path = APIS[args.api][0]
        direct_url = f"http://127.0.0.1:{mock_port}{path}"
        gateway_url = f"http://127.0.0.1:{gateway_port}{path}"
        for rep in range(1, args.reps + 1):
            points += measure(rep, "direct", direct_url, mock.pid, args, load_cpu)
            for name, env in variants.items():
                gateway = start(
                    pinned(gateway_cpu, [python, "-m", "llm_gateway"]),
                    env,
                    f"http://127.0.0.1:{gateway_port}/healthz",
                    OUT / f"{name}.log",
                )
                try:
                    before = redis_round_trips(redis_port) if "REDIS_URL" in env else 0
                    measured = measure(rep, name, gateway_url, gateway.pid, args, load_cpu)
                    points += measured
                    if "REDIS_URL" in env:
                        # Requests include wrk's warm-up; commands include the 1/s heartbeat.
                        commands = redis_round_trips(redis_port) - before
                        requests = sum(p.rps * args.duration for p in measured)
                        notes.append(f"rep {rep}: {commands / requests:.3f} Redis round trips per request")
                finally:
                    stop(gateway)
    finally:
        stop(mock)
        for helper in (redis_server, collector):
            if helper is not None:
                stop(helper)
    print(
        f"pinning: {'mock+wrk(+redis) on cpu 0, gateway on cpu 1' if two_cores else 'none (one core)'}; "
        f"{args.duration}s per point; API {args.api}; gateway env extras: {args.env or 'none'}\n"
    )
    print(table(points))
    for note in notes:
        print(note)
    if base is not None:
        print()
        print(regression_table(points, args.base))


if __name__ == "__main__":
    main()
