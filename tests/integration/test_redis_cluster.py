"""``REDIS_CLUSTER=true`` against a real Redis Cluster (three masters, a replica each): three gateways
count quotas, rate limits and token budgets exactly whichever master holds a tenant, apply what the operator's
live-map writer stores, and ride out a master's failover on their local shares."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from llm_gateway.core.api_keys import key_digest
from llm_gateway.core.quota import quota_key, rate_key, token_key
from llm_gateway.core.quota_map import TenantEntry
from tenantquota_operator.live_map import LiveMap
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, assert_openai_error, chat_body, metric_value
from tests.redis_cluster import MASTERS, LocalCluster
from tests.support import ManagedProcess

LOOSE_RATE = {"RPS": "100000", "BURST": "100000"}
# As in test_quotas.py: exactly-once counting holds while Redis answers in time, and 180 concurrent
# requests through three gateways beside six redis-servers on two cores can starve a call past 250 ms.
PATIENT = {"REDIS_TIMEOUT_MS": "3000"}


def cluster_env(cluster: LocalCluster) -> dict[str, str]:
    return {"REDIS_URL": cluster.url, "REDIS_CLUSTER": "true"}


def start_three(gateway_factory: GatewayFactory, cluster: LocalCluster, **env: str) -> list[ManagedProcess]:
    gateways = [gateway_factory(**cluster_env(cluster), **env) for _ in range(3)]
    replicas = cluster.owner("gateway_replicas").client()
    cluster.wait_until(lambda: replicas.zcard("gateway_replicas") == 3, "three gateways registered", 10)
    time.sleep(1.2)  # one more heartbeat, so every gateway has read the count
    return gateways


def fire(urls: list[str], keys: list[str], **body: Any) -> list[httpx.Response]:
    """One request per entry of ``keys`` (its API key), all at once, spread round-robin over ``urls``;
    ``body`` adds fields to the chat body."""

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=len(keys))) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        urls[i % len(urls)] + CHAT, json=chat_body(**body), headers={"X-Api-Key": key}
                    )
                    for i, key in enumerate(keys)
                )
            )

    return asyncio.run(run())


def by_key(keys: list[str], responses: list[httpx.Response]) -> dict[str, Counter[int]]:
    outcomes: dict[str, Counter[int]] = {}
    for key, response in zip(keys, responses, strict=True):
        outcomes.setdefault(key, Counter())[response.status_code] += 1
    return outcomes


def test_three_replicas_admit_exactly_each_quota_whichever_master_holds_it(
    gateway_factory: GatewayFactory, redis_cluster: LocalCluster
) -> None:
    tenants = redis_cluster.tenants_one_per_master("quota")
    assert len({redis_cluster.owner(quota_key(t)).port for t in tenants}) == MASTERS
    gateways = start_three(gateway_factory, redis_cluster, DEFAULT_QUOTA="20", **LOOSE_RATE, **PATIENT)
    keys = [tenant for tenant in tenants for _ in range(60)]
    responses = fire([g.url for g in gateways], keys)
    assert by_key(keys, responses) == {tenant: {200: 20, 429: 40} for tenant in tenants}
    # Counted in Redis, not in a gateway's local share (which would say 7, ceil(20 / 3)).
    assert {r.headers["x-ratelimit-limit-requests"] for r in responses} == {"20"}
    for tenant in tenants:
        assert redis_cluster.get(quota_key(tenant)) == b"20"  # refused requests are not counted


def test_three_replicas_hold_each_token_budget_whichever_master_holds_it(
    gateway_factory: GatewayFactory, redis_cluster: LocalCluster
) -> None:
    tenants = redis_cluster.tenants_one_per_master("tokens")
    assert len({redis_cluster.owner(token_key(t)).port for t in tenants}) == MASTERS
    gateways = start_three(
        gateway_factory, redis_cluster, DEFAULT_TOKEN_QUOTA="2000", **LOOSE_RATE, **PATIENT
    )
    keys = [tenant for tenant in tenants for _ in range(40)]
    responses = fire([g.url for g in gateways], keys)
    # Naming no output limit, each reserves the cap lowered to all the budget could hold: exactly one
    # per tenant gets in, wherever it lands, and the rest are refused while it holds the budget.
    assert by_key(keys, responses) == {tenant: {200: 1, 429: 39} for tenant in tenants}
    assert {r.json()["error"]["type"] for r in responses if r.status_code == 429} == {"tokens"}
    capped = [tenant for tenant in tenants for _ in range(40)]
    responses = fire([g.url for g in gateways], capped, max_tokens=20)
    cost = len(orjson.dumps(chat_body(max_tokens=20))) + 20
    for tenant, outcome in by_key(capped, responses).items():
        admitted = outcome[200] + 1  # with the first phase's one
        assert outcome[200] >= (2000 - 21) // cost and outcome[429] > 0  # what fits without settling
        owner = redis_cluster.owner(token_key(tenant)).client()
        expected = [str(admitted).encode(), str(20 * admitted).encode(), b"0"]
        deadline = time.monotonic() + 5
        while (
            counts := owner.hmget(token_key(tenant), ["input", "output", "held"])
        ) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        # Every admitted request was settled to its usage (1 in, 20 out), one call each, in its slot,
        # and nothing is held any more.
        assert counts == expected
        assert 21 * admitted <= 2000


def test_three_replicas_admit_exactly_each_rate_limit_burst_whichever_master_holds_it(
    gateway_factory: GatewayFactory, redis_cluster: LocalCluster
) -> None:
    burst = 6
    tenants = redis_cluster.tenants_one_per_master("rate")
    gateways = start_three(gateway_factory, redis_cluster, RPS="0.1", BURST=str(burst), **PATIENT)
    keys = [tenant for tenant in tenants for _ in range(30)]
    started = time.monotonic()
    responses = fire([g.url for g in gateways], keys)
    # One request more every 10 s (RPS 0.1): exact only while the burst took less than that.
    assert time.monotonic() - started < 10
    assert by_key(keys, responses) == {tenant: {200: burst, 429: 30 - burst} for tenant in tenants}
    for response in responses:
        if response.status_code == 429:
            assert_openai_error(response, 429, "rate_limit_exceeded")
    for tenant in tenants:
        assert redis_cluster.get(quota_key(tenant)) == str(burst).encode()  # refusals cost no quota
        assert redis_cluster.get(rate_key(tenant, tenant)) is not None


SECRET = "key-hash-secret-for-tests"


def test_the_operators_live_map_writer_reaches_every_replica_on_the_cluster(
    gateway_factory: GatewayFactory, redis_cluster: LocalCluster
) -> None:
    """LiveMap (the operator's writer) on the cluster: the quota map, its revision and the key map
    lie on three different masters, and are written without a MULTI across them."""
    tenant, probe, _ = redis_cluster.tenants_one_per_master("live")
    assert len({redis_cluster.owner(k).port for k in ("quota_map", "quota_map:rev", "api_keys")}) == MASTERS
    gateways = start_three(
        gateway_factory,
        redis_cluster,
        AUTH_MODE="keys",
        KEY_HASH_SECRET=SECRET,
        DEFAULT_QUOTA="100",
        **LOOSE_RATE,
        **PATIENT,
    )
    tenant_key, probe_key = f"sk-{tenant}-0123456789", f"sk-{probe}-0123456789"
    assert_openai_error(fire([gateways[0].url], [tenant_key])[0], 401)

    async def write() -> None:
        live_map = LiveMap(redis_cluster.url, storage_id=str, cluster=True)
        try:
            await live_map.put_keys(probe, {key_digest(SECRET.encode(), probe_key.encode())})
            await live_map.put(tenant, TenantEntry(requests=4))
            await live_map.put_keys(tenant, {key_digest(SECRET.encode(), tenant_key.encode())})
            # Last: a gateway that applies it read the quota map after everything above was written
            # (it reads the quota map, then the key map).
            await live_map.put(probe, TenantEntry(requests=50))
        finally:
            await live_map.close()

    asyncio.run(write())
    written = time.monotonic()
    for gateway in gateways:
        redis_cluster.wait_until(
            lambda g=gateway: fire([g.url], [probe_key])[0].headers.get("x-ratelimit-limit-requests") == "50",
            "a gateway applied the live map",
            5,
        )
    assert time.monotonic() - written < 3.0  # a heartbeat (1 s) and a reload
    keys = [tenant_key] * 30
    assert by_key(keys, fire([g.url for g in gateways], keys)) == {tenant_key: {200: 4, 429: 26}}

    async def usage() -> tuple[int, float | None]:
        live_map = LiveMap(redis_cluster.url, storage_id=str, cluster=True)
        try:
            counted = await live_map.usage(tenant)
        finally:
            await live_map.close()
        return counted.used, counted.reset_at

    used, reset_at = asyncio.run(usage())
    assert used == 4 and reset_at is not None and 0 < reset_at - time.time() <= 60


@dataclass(frozen=True)
class Sent:
    started: float
    gateway: int
    tenant: str
    status: int
    limit: str | None
    latency: float


class Load:
    """One thread per gateway and tenant, each sending a request every 20 ms until ``stop()``."""

    def __init__(self, gateways: list[ManagedProcess], tenants: list[str]) -> None:
        self.sent: list[Sent] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(index, gateway, tenant))
            for index, gateway in enumerate(gateways)
            for tenant in tenants
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, index: int, gateway: ManagedProcess, tenant: str) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                response = client.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": tenant})
                limit = response.headers.get("x-ratelimit-limit-requests")
                latency = time.monotonic() - started
                self.sent.append(Sent(started, index, tenant, response.status_code, limit, latency))
                time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


class Readiness:
    """Polls each gateway's ``/readyz`` every 50 ms: when it reported Redis unavailable, and ok again."""

    def __init__(self, gateways: list[ManagedProcess]) -> None:
        self.seen: list[list[tuple[float, bool]]] = [[] for _ in gateways]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(gateways,))
        self._thread.start()

    def _run(self, gateways: list[ManagedProcess]) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                for index, gateway in enumerate(gateways):
                    ok = client.get(gateway.url + "/readyz").json()["checks"]["redis"] == "ok"
                    self.seen[index].append((time.monotonic(), ok))
                time.sleep(0.05)

    def outage(self, index: int, after: float) -> tuple[float, float] | None:
        """When gateway ``index`` first reported Redis unavailable after ``after``, and the first ok
        after that; None while it has not come back."""
        polls = [(at, ok) for at, ok in self.seen[index] if at > after]
        down = next((at for at, ok in polls if not ok), None)
        up = next((at for at, ok in polls if ok and down is not None and at > down), None)
        return (down, up) if down is not None and up is not None else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.mark.parametrize(
    ("redis_cluster", "failure"),
    [({}, "killed"), ({"full_coverage": False}, "hung")],
    ids=["killed", "hung-partial-coverage"],
    indirect=["redis_cluster"],
)
def test_a_master_failover_costs_a_local_share_then_redis_enforces_again(
    gateway_factory: GatewayFactory, redis_cluster: LocalCluster, failure: str
) -> None:
    """A master dies (SIGKILL) or hangs (SIGSTOP) under load; its replica takes over its slots.

    A hung master never makes redis-py see an error (each call is cut short by the gateway's own
    timeout), and with ``cluster-require-full-coverage no`` the other masters never answer
    ``CLUSTERDOWN`` either: only the store's heartbeat forgetting the map after a failure makes
    the gateways find the promoted replica (without it they stayed unavailable past 20 s).

    Allowance: Redis counts a tenant's window exactly, at most ``quota``: here the whole quota is
    spent through Redis before the failure and replicated (the replica's offset caught up), and a
    refused request writes nothing, so Redis's asynchronous replication cannot lose a count. While
    Redis is unavailable to a gateway, that gateway admits at most its local share, ceil(quota / N)
    with N = 3 the replicas it last saw through Redis (QUOTA_FAILURE_MODE=local, the default); each
    gateway's local count lasts the local window (600 s here, longer than the test). So the tenant
    gets at most quota + 3 * ceil(quota / 3) = 30 + 30 requests over the whole test.
    """
    quota, share = 30, 10
    timeout = 0.5
    tenant, *bystanders = redis_cluster.tenants_one_per_master("failover")
    master = redis_cluster.owner(quota_key(tenant))
    replica = redis_cluster.replica_of(master)
    assert master.url == redis_cluster.url  # the gateways' REDIS_URL names the master that fails
    gateways = start_three(
        gateway_factory,
        redis_cluster,
        DEFAULT_QUOTA=str(quota),
        TENANT_QUOTAS=",".join(f"{b}=1000000" for b in bystanders),
        QUOTA_WINDOW_SECS="600",
        REDIS_TIMEOUT_MS=str(int(timeout * 1000)),
        **LOOSE_RATE,
    )
    spent = fire([g.url for g in gateways], [tenant] * (quota + 3))
    assert Counter(r.status_code for r in spent) == {200: quota, 429: 3}
    assert {r.headers["x-ratelimit-limit-requests"] for r in spent} == {str(quota)}  # through Redis
    redis_cluster.wait_until(
        lambda: (
            replica.client().info("replication")["slave_repl_offset"]
            >= master.client().info("replication")["master_repl_offset"]
        ),
        "the replica caught up",
        5,
    )

    readiness = Readiness(gateways)
    load = Load(gateways, [tenant, *bystanders])
    try:
        time.sleep(0.5)
        failed_at = time.monotonic()
        master.kill() if failure == "killed" else master.freeze()
        promoted = redis_cluster.wait_until(
            lambda: replica.client().info("replication")["role"] == "master" and redis_cluster.state_ok(),
            "the replica took over",
            20,
        )
        redis_cluster.wait_until(
            lambda: all(readiness.outage(i, failed_at) for i in range(len(gateways))),
            "every gateway enforces through Redis again",
            20,
        )
        outages = [readiness.outage(i, failed_at) or (0.0, 0.0) for i in range(len(gateways))]
        errors = [metric_value(g.url, "quota_backend_errors_total") for g in gateways]
        time.sleep(2.0)
    finally:
        load.stop()
        readiness.stop()

    assert {s.status for s in load.sent} <= {200, 429}  # never a 5xx: QUOTA_FAILURE_MODE=local
    assert max(s.latency for s in load.sent) < timeout + 1.0  # at most one timeout, and no retries
    ours = [s for s in load.sent if s.tenant == tenant]
    local = [s for s in ours if s.status == 200]
    assert {s.limit for s in local} == {str(share)}  # admitted from a local share, none by Redis
    assert all(n <= share for n in Counter(s.gateway for s in local).values())
    assert quota + len(local) <= quota + 3 * share  # the allowance over the whole test
    # Once a gateway was back, Redis decided: the count survived the failover on the replica.
    after = [s for s in ours if s.started > outages[s.gateway][1]]
    assert after and {(s.status, s.limit) for s in after} == {(429, str(quota))}
    assert redis_cluster.owner(quota_key(tenant)) is replica
    assert redis_cluster.get(quota_key(tenant)) == str(quota).encode()
    assert {s.status for s in load.sent if s.tenant != tenant} == {200}
    for gateway, before in zip(gateways, errors, strict=True):
        assert metric_value(gateway.url, "quota_backend_errors_total") == before > 0  # stopped growing
        log = gateway.output()
        assert log.count("quota backend unavailable") == 1  # one outage, logged once
        assert "quota backend available" in log.rsplit("quota backend unavailable", 1)[1]
    seen = [(round(down - failed_at, 2), round(up - failed_at, 2)) for down, up in outages]
    print(  # the numbers the README quotes (pytest -s)
        f"\n{failure}: replica promoted after {promoted:.2f} s; each gateway's Redis outage (from, to) "
        f"in s after the failure: {seen}; the tenant admitted locally meanwhile: {len(local)}; "
        f"slowest request {max(s.latency for s in load.sent) * 1000:.0f} ms of {len(load.sent)}"
    )
