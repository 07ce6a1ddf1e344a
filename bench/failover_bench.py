"""What routing and the circuit breakers cost per request: the work :class:`Failover` adds around one
successful upstream attempt, on the real objects (routing table, balancer, breakers, retry budget,
Prometheus counters), without I/O.

Per request: the model's group (one dictionary lookup, cached per API family), the pick, the
breaker's acquire and verdict, the in-flight count, the retry budget's request count, and the
attempt counter. Groups of one deployment (the default upstream) and of three (weighted, equal
priority, where the pick draws two), plus a breaker that is open (the 503 path's check).

    python bench/failover_bench.py [--requests 200000]
"""

from __future__ import annotations

import argparse
import random
import time

from llm_gateway.adapters.upstream import Upstream
from llm_gateway.adapters.upstream_router import UpstreamRouter
from llm_gateway.core.balancer import Balancer
from llm_gateway.core.breaker import BreakerPolicy
from llm_gateway.core.retries import RetryBudget
from llm_gateway.core.routing import Deployment, ModelRoute, RoutingTable
from llm_gateway.telemetry.metrics import GatewayMetrics


def router() -> UpstreamRouter:
    names = ("default", "east", "west")
    table = RoutingTable(
        (
            ModelRoute(
                "gpt-4o",
                (Deployment("default", weight=2), Deployment("east", "gpt-4o"), Deployment("west", "gpt-4o")),
            ),
        ),
        "default",
    )
    upstreams = [
        Upstream("http://127.0.0.1:9", "k", idle_timeout=1, max_response_bytes=1 << 20, name=name)
        for name in names
    ]
    return UpstreamRouter(upstreams, table, Balancer(table.deployments(), BreakerPolicy(), random.Random(1)))


def per_request(model: str, requests: int) -> float:
    """Microseconds per request of the failover bookkeeping around one successful attempt."""
    routes, budget = router(), RetryBudget(0.2, 3)
    metrics = GatewayMetrics(("/v1/chat/completions",), per_tenant=False)
    clock = time.monotonic
    started = time.perf_counter()
    for _ in range(requests):
        group = routes.route(model, "openai")
        now = clock()
        budget.request(now)
        state = routes.balancer.pick(group, now)
        assert state is not None
        health = state.health
        ticket = health.breaker.acquire(now)
        health.in_flight += 1
        metrics.attempts(state.name, "ok").inc()
        health.breaker.record(clock(), ticket, True)
        health.in_flight -= 1
    return (time.perf_counter() - started) / requests * 1e6


def open_check(requests: int) -> float:
    """Microseconds per refused request when the only deployment's breaker is open."""
    routes = router()
    group = routes.route("gpt-4o-mini", "openai")
    breaker = group[0].health.breaker
    while breaker.state != "open":
        breaker.record(time.monotonic(), breaker.acquire(time.monotonic()), False, retry_after=3600.0)
    started = time.perf_counter()
    for _ in range(requests):
        group = routes.route("gpt-4o-mini", "openai")
        now = time.monotonic()
        assert routes.balancer.pick(group, now) is None
        routes.balancer.retry_after(group, now)
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    print("| case | µs per request |\n|---|---|")
    print(f"| one deployment (the default upstream) | {per_request('gpt-4o-mini', args.requests):.2f} |")
    print(f"| a group of three, weighted | {per_request('gpt-4o', args.requests):.2f} |")
    print(f"| breaker open: the refusal's check | {open_check(args.requests):.2f} |")


if __name__ == "__main__":
    main()
