"""What tenant policies cost per request: the gateway's authorization step on the real objects
(the tenant's facts from the live map, the model's from the routing table, the request's context,
:class:`Authorization` and its Cedar calls), without I/O, with 1, 10 and 100 policies.

Policies are of the kinds the README shows, in proportion: a tier's models, a group's tools, a
ceiling on ``max_tokens``, a namespace's streams, PII to an upstream, hours of a costly model; each
names its own tenants or models, so that a set of 100 is 100 different rules. Requests come from
200 tenants (each in the live map with a tier, groups, a namespace and labels) over 8 models, with
a few ``max_tokens`` values and streams on and off, the way traffic repeats.

- ``warm``: the caches filled (each (tenant, action, model) decided once before): what a replica
  pays per request in steady state.
- ``first``: each request a (tenant, model) pair the replica had not seen: one full Cedar
  evaluation and the bookkeeping around it (partial evaluation waits for the pair's second request).
- ``second``: the same pairs again: Cedar's partial evaluation, which decides the pair for every
  context or names the context attributes it depends on, paid once per pair.
- ``uncached``: one full Cedar evaluation per request, what the cache saves.
- ``new keys``: each request from an API key never seen, not in the live map (``AUTH_MODE=open``):
  such tenants share their decisions while no policy names tenants by id.

CPU time per request (``time.process_time``), single thread, the median of ``--reps`` runs.

    python bench/policy_bench.py [--requests 20000] [--reps 3]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import statistics
import time
from collections.abc import Callable
from itertools import cycle, islice

from llm_gateway.adapters.upstream import Upstream
from llm_gateway.adapters.upstream_router import UpstreamRouter
from llm_gateway.api.authorization import Authorization
from llm_gateway.core.balancer import Balancer
from llm_gateway.core.breaker import BreakerPolicy
from llm_gateway.core.policy.documents import PolicyDocument
from llm_gateway.core.policy.facts import RequestContext
from llm_gateway.core.quota_map import TenantEntry
from llm_gateway.core.quota_policy import QuotaPolicy
from llm_gateway.core.routing import Deployment, ModelRoute, RoutingTable
from llm_gateway.core.token_budget import OutputLimits
from llm_gateway.errors import PolicyDenied

MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "text-embedding-3-small",
    "gpt-5",
)
TENANTS = 200
LIMITS = OutputLimits(("max_tokens",), "max_tokens")
KINDS: tuple[Callable[[int], str], ...] = (
    lambda n: (
        f'@id("tier-{n}") forbid (principal, action in Action::"invoke", resource) '
        f'when {{ principal.tier == "tier-{n % 7}" }} unless {{ resource.name like "{MODELS[n % 8]}*" }};'
    ),
    lambda n: (
        f'@id("tools-{n}") forbid (principal, action, resource) '
        f'when {{ context.has_tools }} unless {{ principal in Group::"agents-{n % 5}" }};'
    ),
    lambda n: (
        f'@id("ceiling-{n}") forbid (principal, action, resource == Model::"{MODELS[n % 8]}") '
        f"when {{ context has max_tokens && context.max_tokens > {4096 + n} }};"
    ),
    lambda n: (
        f'@id("streams-{n}") forbid (principal in Namespace::"team-{n % 9}", action, resource) '
        "when { context.stream };"
    ),
    lambda n: (
        f'@id("pii-{n}") forbid (principal, action, resource in Upstream::"public-{n % 3}") '
        'when { context.pii.contains("EMAIL") };'
    ),
    lambda n: (
        f'@id("hours-{n}") forbid (principal, action, resource == Model::"{MODELS[n % 8]}") '
        f'when {{ principal.tier == "tier-{n % 7}" && context.hour < {n % 6} }};'
    ),
)


def policies(count: int) -> PolicyDocument:
    return PolicyDocument(
        "bench/rules", "\n".join(kind(n) for n, kind in islice(enumerate(cycle(KINDS)), count))
    )


def setup(count: int) -> tuple[Authorization, QuotaPolicy, UpstreamRouter]:
    quotas = QuotaPolicy(default_quota=10**9, tenant_quotas={}, window_secs=60, rps=1e9, burst=10**9)
    quotas.replace_live_map(
        {
            f"tenant-{n}": TenantEntry(
                requests=10**9,
                tier=f"tier-{n % 7}",
                groups=frozenset({f"agents-{n % 5}"}),
                namespace=f"team-{n % 9}",
                labels=(("team", f"t{n % 4}"),),
            )
            for n in range(TENANTS)
        }
    )
    names = ("default", "public-0", "public-1")
    table = RoutingTable(
        (ModelRoute("gpt-4o", (Deployment("public-0"), Deployment("public-1", priority=1))),), "default"
    )
    upstreams = [
        Upstream("http://127.0.0.1:9", "k", idle_timeout=1, max_response_bytes=1 << 20, name=name)
        for name in names
    ]
    router = UpstreamRouter(
        upstreams, table, Balancer(table.deployments(), BreakerPolicy(), random.Random(1))
    )
    authorization = Authorization([policies(count)], default_allow=True, pseudonym=str)
    return authorization, quotas, router


def requests(count: int, seed: int) -> list[tuple[str, str, dict[str, object], bool]]:
    rng = random.Random(seed)
    return [
        (
            f"tenant-{rng.randrange(TENANTS)}",
            rng.choice(MODELS),
            {"max_tokens": rng.choice((256, 1024, 4096))},
            rng.random() < 0.3,
        )
        for _ in range(count)
    ]


def cpu_per_request(
    authorization: Authorization,
    quotas: QuotaPolicy,
    router: UpstreamRouter,
    asked: list[tuple[str, str, dict[str, object], bool]],
    *,
    cached: bool,
) -> float:
    """Microseconds of CPU per request of the endpoint's authorization step (a deny raises, as in
    the gateway)."""
    uncached = authorization.authorizer.decide_uncached
    started = time.process_time()
    for tenant, model, payload, stream in asked:
        principal = quotas.tenant_facts(tenant)
        resource = router.describe(model, "openai")
        context = RequestContext(
            payload, 300, stream, LIMITS, tuple, time.gmtime().tm_hour, lambda: "private"
        )
        if not cached:
            uncached(principal, "chat", resource, context)
            continue
        with contextlib.suppress(PolicyDenied):
            authorization.check(principal, "chat", resource, context)
    return (time.process_time() - started) / len(asked) * 1e6


def run(count: int, number: int) -> dict[str, float]:
    authorization, quotas, router = setup(count)
    asked = requests(number, seed=count)
    for _ in range(2):  # every pair met twice: its full and its partial evaluation are behind it
        cpu_per_request(authorization, quotas, router, asked, cached=True)
    warm = cpu_per_request(authorization, quotas, router, asked, cached=True)
    uncached = cpu_per_request(authorization, quotas, router, asked[: number // 10], cached=False)
    fresh, _, _ = setup(count)  # nothing decided yet: every pair is new
    pairs = list(
        {
            (tenant, model): (tenant, model, payload, stream) for tenant, model, payload, stream in asked
        }.values()
    )
    first = cpu_per_request(fresh, quotas, router, pairs, cached=True)
    second = cpu_per_request(fresh, quotas, router, pairs, cached=True)
    keys = [
        (f"sk-new-key-{n}", model, payload, stream) for n, (_, model, payload, stream) in enumerate(asked)
    ]
    cpu_per_request(authorization, quotas, router, keys[:200], cached=True)  # each model's first
    new_keys = cpu_per_request(authorization, quotas, router, keys[200:], cached=True)
    return {
        "warm": warm,
        "first": first,
        "second": second,
        "uncached": uncached,
        "new_keys": new_keys,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the decision log's allow lines are debug; denies are not the cost here
    print(
        "| policies | warm µs/request | a new API key each request µs | first of a (tenant, model) µs"
        " | its second µs | uncached µs/request |\n|---|---|---|---|---|---|"
    )
    for count in (1, 10, 100):
        runs = [run(count, args.requests) for _ in range(args.reps)]
        median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(
            f"| {count} | {median['warm']:.1f} | {median['new_keys']:.1f} | {median['first']:.0f}"
            f" | {median['second']:.0f} | {median['uncached']:.0f} |"
        )


if __name__ == "__main__":
    main()
