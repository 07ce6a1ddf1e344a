"""Bounded soak: the gateway under moderate mixed load for a fixed time; memory and fds must stay flat.

Starts redis-server, openaimock and the gateway (Redis quotas, JSON access log, strict privacy) on
127.0.0.1, then runs ``--workers`` client loops for ``--duration`` seconds at about ``--rate``
requests/s in total, mixing: plain completions, streams, streams the client abandons after the first
chunk, invalid bodies (400) and a tenant whose quota is spent (429). Every ``--sample`` seconds it
records the gateway's resident memory and open file descriptors.

Passes (exit 0) when no request got a status other than the one its kind expects, and after the
warm-up (the first ``--warmup`` seconds) resident memory grew by less than ``--max-rss-growth`` and
the fd count by at most ``--max-fd-growth``. Prints a summary and writes the samples as JSON to
``bench/out/soak.json``.

    python bench/soak.py [--duration 600] [--rate 120] [--workers 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from proxy_bench import free_port, redis_server_args, start, stop

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
CHAT = "/v1/chat/completions"
SPENT_TENANT = "soak-spent"

# kind → (share of requests, expected status)
MIX = {
    "completion": (0.45, 200),
    "stream": (0.30, 200),
    "abandoned_stream": (0.10, 200),
    "invalid": (0.08, 400),
    "quota_spent": (0.07, 429),
}


@dataclass
class Tally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


async def one_request(client: httpx.AsyncClient, kind: str, tally: Tally) -> None:
    body: dict[str, object] = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "soak test: mail j.doe@example.com about order 42"}],
    }
    headers = {"X-Api-Key": f"soak-tenant-{random.randrange(20)}"}
    if kind in ("stream", "abandoned_stream"):
        body["stream"] = True
    if kind == "invalid":
        body["messages"] = []
    if kind == "quota_spent":
        headers["X-Api-Key"] = SPENT_TENANT
    try:
        if kind in ("stream", "abandoned_stream"):
            async with client.stream("POST", CHAT, json=body, headers=headers) as response:
                status = response.status_code
                async for _ in response.aiter_bytes():
                    if kind == "abandoned_stream":
                        break
        else:
            status = (await client.post(CHAT, json=body, headers=headers)).status_code
    except httpx.HTTPError as exc:
        tally.errors[type(exc).__name__] += 1
        return
    tally.statuses[(kind, status)] += 1
    if status != MIX[kind][1]:
        tally.unexpected[(kind, status)] += 1


async def worker(base_url: str, deadline: float, interval: float, tally: Tally) -> None:
    kinds = list(MIX)
    weights = [share for share, _ in MIX.values()]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            await one_request(client, random.choices(kinds, weights)[0], tally)
            next_at += interval
            await asyncio.sleep(max(next_at - time.monotonic(), 0))


async def sampler(
    process: psutil.Process, deadline: float, every: float, samples: list[dict[str, float]]
) -> None:
    started = time.monotonic()
    while time.monotonic() < deadline:
        samples.append(
            {
                "t": round(time.monotonic() - started, 1),
                "rss_mib": process.memory_info().rss / 2**20,
                "fds": process.num_fds(),
                "connections": len(process.net_connections("tcp")),
            }
        )
        await asyncio.sleep(every)


async def drive(
    args: argparse.Namespace, base_url: str, process: psutil.Process
) -> tuple[Tally, list[dict[str, float]]]:
    tally = Tally()
    samples: list[dict[str, float]] = []
    deadline = time.monotonic() + args.duration
    interval = args.workers / args.rate
    await asyncio.gather(
        sampler(process, deadline, args.sample, samples),
        *(worker(base_url, deadline, interval, tally) for _ in range(args.workers)),
    )
    return tally, samples


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--rate", type=float, default=120, help="requests per second, all workers together")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--sample", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--max-rss-growth", type=float, default=0.10)
    parser.add_argument("--max-fd-growth", type=int, default=8)
    args = parser.parse_args()

    OUT.mkdir(exist_ok=True)
    redis_port, mock_port, gateway_port = free_port(), free_port(), free_port()
    redis = subprocess.Popen(redis_server_args(redis_port), stdout=subprocess.DEVNULL)
    procs = [
        redis,
        start(
            [sys.executable, "-m", "openaimock"],
            {"PORT": str(mock_port), "INTER_TOKEN_MS": "2"},
            f"http://127.0.0.1:{mock_port}/v1/models",
            OUT / "soak-openaimock.log",
        ),
    ]
    gateway = start(
        [sys.executable, "-m", "llm_gateway"],
        {
            "LISTEN_ADDR": f"127.0.0.1:{gateway_port}",
            "OPENAI_API_KEY": "sk-soak-upstream",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{mock_port}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "PRIVACY_MODE": "strict",
            "TENANT_HASH_KEY": "soak-hash-key",
            "TENANT_QUOTAS": f"{SPENT_TENANT}=0",
            "DEFAULT_QUOTA": "100000000",
            "RPS": "100000",
            "BURST": "100000",
        },
        f"http://127.0.0.1:{gateway_port}/healthz",
        OUT / "soak-gateway.log",
    )
    procs.append(gateway)
    base_url = f"http://127.0.0.1:{gateway_port}"
    try:
        tally, samples = asyncio.run(drive(args, base_url, psutil.Process(gateway.pid)))
    finally:
        for proc in reversed(procs):
            stop(proc)

    settled = [s for s in samples if s["t"] >= args.warmup] or samples
    rss_growth = settled[-1]["rss_mib"] / settled[0]["rss_mib"] - 1
    fd_growth = max(s["fds"] for s in settled) - settled[0]["fds"]
    total = sum(tally.statuses.values())
    summary = {
        "duration_s": args.duration,
        "requests": total,
        "requests_per_s": round(total / args.duration, 1),
        "statuses": {f"{kind} {status}": n for (kind, status), n in sorted(tally.statuses.items())},
        "unexpected": {f"{kind} {status}": n for (kind, status), n in sorted(tally.unexpected.items())},
        "client_errors": dict(tally.errors),
        "rss_mib_after_warmup": [round(settled[0]["rss_mib"], 1), round(settled[-1]["rss_mib"], 1)],
        "rss_mib_max": round(max(s["rss_mib"] for s in samples), 1),
        "rss_growth_after_warmup": round(rss_growth, 4),
        "fds_after_warmup": [settled[0]["fds"], settled[-1]["fds"]],
        "fd_growth_after_warmup": fd_growth,
        "gateway_exit_code": gateway.returncode,
    }
    (OUT / "soak.json").write_text(json.dumps({"summary": summary, "samples": samples}, indent=1))
    print(json.dumps(summary, indent=1))
    ok = (
        not tally.unexpected
        and not tally.errors
        and rss_growth < args.max_rss_growth
        and fd_growth <= args.max_fd_growth
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
