"""Per-call cost of the admission script's two transports: ScriptConnection on a single redis-server
(pipelined, hiredis) against ClusterScript on a local three-master Redis Cluster (redis-py's
RedisCluster, as ``REDIS_CLUSTER=true`` runs it).

    PYTHONPATH=service:operator:. python bench/cluster_transport.py [--calls 20000] [--reps 3]

Each rep makes ``--calls`` calls one at a time (c=1) and ``--calls`` in waves of 32 at once (c=32),
under uvloop as the gateway runs; it prints this process's CPU time per call (the gateway's cost)
and the wall time per call. The Redis servers run in their own processes.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from llm_gateway.adapters.redis_cluster import ClusterClient, ClusterScript
from llm_gateway.adapters.redis_script import ScriptConnection, ScriptRunner
from llm_gateway.core.quota import ADMIT_SCRIPT, quota_key, rate_key
from tests.redis_cluster import LocalCluster
from tests.support import RedisServer

ARGS = [10**9, 60_000, 0.001, 10**9]  # limits nobody reaches: every call is an admission


async def measure(runner: ScriptRunner, calls: int, concurrency: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per call."""
    tenants = [f"bench{i}" for i in range(concurrency)]

    def call(i: int) -> Awaitable[Any]:
        tenant = tenants[i % concurrency]
        return runner.call([quota_key(tenant), rate_key(tenant, tenant)], ARGS)

    await asyncio.gather(*(call(i) for i in range(concurrency)))  # connections open, script loaded
    cpu, wall = time.process_time(), time.perf_counter()
    for wave in range(calls // concurrency):
        await asyncio.gather(*(call(wave * concurrency + i) for i in range(concurrency)))
    done = calls // concurrency * concurrency
    return (time.process_time() - cpu) / done * 1e6, (time.perf_counter() - wall) / done * 1e6


async def run(single_url: str, cluster_url: str, calls: int, reps: int) -> None:
    cluster = ClusterClient.connect(cluster_url, max_connections=32)
    transports: dict[str, Callable[[], ScriptRunner]] = {
        "ScriptConnection (single Redis)": lambda: ScriptConnection(single_url, ADMIT_SCRIPT),
        "ClusterScript (Redis Cluster)": lambda: ClusterScript(cluster, ADMIT_SCRIPT),
    }
    print("| transport | rep | c=1 CPU µs/call | c=1 wall µs/call | c=32 CPU µs/call | c=32 wall µs/call |")
    print("|---|---|---|---|---|---|")
    try:
        for rep in range(1, reps + 1):
            for name, make in transports.items():  # interleaved, so drifts hit both alike
                runner = make()
                one = await measure(runner, calls, 1)
                many = await measure(runner, calls, 32)
                runner.close()
                print(f"| {name} | {rep} | {one[0]:.0f} | {one[1]:.0f} | {many[0]:.0f} | {many[1]:.0f} |")
    finally:
        await cluster.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=3)
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    single = RedisServer(workdir)
    cluster = LocalCluster(workdir)
    try:
        uvloop.run(run(single.url, cluster.url, options.calls, options.reps))
    finally:
        cluster.stop()
        single.kill()


if __name__ == "__main__":
    main()
