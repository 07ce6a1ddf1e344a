"""Which upstream client: the same minimal pass-through proxy with aiohttp, httpx and pyreqwest.

Starts openaimock and, one after the other, ``bench/passthrough_apps.py``'s apps under uvicorn
(uvloop, httptools), pinned like ``proxy_bench.py``, and runs wrk non-stream at each concurrency.

    python bench/upstream_clients.py [--duration 5] [--concurrency 1 64]
"""

from __future__ import annotations

import argparse
import sys

from proxy_bench import OUT, ROOT, cpu_seconds, free_port, pinned, run_wrk, start, stop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    mock_port = free_port()
    mock = start(
        pinned(0, [sys.executable, "-m", "openaimock"]),
        {"PORT": str(mock_port), "INTER_TOKEN_MS": "0"},
        f"http://127.0.0.1:{mock_port}/v1/models",
        OUT / "openaimock.log",
    )
    print("| client | c | req/s | p50 ms | CPU ms/req |\n|---|---|---|---|---|")
    try:
        for client in ("aiohttp", "httpx", "pyreqwest"):
            port = free_port()
            app = start(
                pinned(
                    1,
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        f"bench.passthrough_apps:{client}_app",
                        "--port",
                        str(port),
                        "--loop",
                        "uvloop",
                        "--http",
                        "httptools",
                        "--no-access-log",
                        "--log-level",
                        "warning",
                    ],
                ),
                {"UPSTREAM": f"http://127.0.0.1:{mock_port}", "PYTHONPATH": str(ROOT)},
                f"http://127.0.0.1:{port}/",
                OUT / f"passthrough-{client}.log",
            )
            try:
                url = f"http://127.0.0.1:{port}/"
                run_wrk(url, False, 16, 2, 0)
                for concurrency in args.concurrency:
                    before = cpu_seconds(app.pid)
                    result = run_wrk(url, False, concurrency, args.duration, 0)
                    used = cpu_seconds(app.pid) - before
                    rps = result["requests"] / (result["duration_us"] / 1e6)
                    print(
                        f"| {client} | {concurrency} | {rps:,.0f} | {result['p50_us'] / 1000:.2f} "
                        f"| {used * 1000 / max(result['requests'], 1):.3f} |"
                    )
            finally:
                stop(app)
    finally:
        stop(mock)


if __name__ == "__main__":
    main()
