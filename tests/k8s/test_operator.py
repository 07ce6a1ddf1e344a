"""The operator as a real process against a real kube-apiserver, Redis and gateway."""

from __future__ import annotations

import datetime
import time
from typing import Any

import httpx
import orjson

from llm_gateway.core.privacy import tenant_hash
from llm_gateway.core.quota import quota_key, token_key
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, chat_body
from tests.integration.scrape import scrape as _scrape
from tests.k8s.cluster import Cluster
from tests.k8s.operator_support import (
    OperatorFactory,
    apply_tenantquota,
    condition,
    eventually,
    limit_seen,
    live_entry,
    table,
)
from tests.redis_cluster import LocalCluster
from tests.support import RedisServer


def test_apply_edit_delete_reach_redis_and_the_gateway_within_two_seconds(
    cluster: Cluster,
    namespace: str,
    redis_server: RedisServer,
    start_operator: OperatorFactory,
    gateway_factory: GatewayFactory,
) -> None:
    operator = start_operator()
    gateway = gateway_factory(REDIS_URL=redis_server.url, DEFAULT_QUOTA="1000")
    assert limit_seen(gateway, "alpha") == "1000"

    apply_tenantquota(cluster, namespace, "alpha", tenant="alpha", requests=3)
    eventually(lambda: limit_seen(gateway, "alpha") == "3", what="the gateway enforcing 3")
    assert live_entry(redis_server, "alpha") == {
        "v": 1,
        "requests": 3,
        "window_secs": 60,
        "namespace": namespace,
    }

    cluster.kubectl("patch", "tq/alpha", "-n", namespace, "--type=merge", "-p", '{"spec":{"requests":5}}')
    eventually(lambda: limit_seen(gateway, "alpha") == "5", what="the gateway enforcing 5")

    ready = eventually(lambda: condition(cluster, namespace, "alpha", "Ready"), what="a Ready condition")
    assert (ready["status"], ready["reason"]) == ("True", "Applied")
    status = eventually(
        lambda: (s := cluster.get("tq/alpha", "-n", namespace)["status"]).get("usage", {}).get("used") and s,
        timeout=5,
        what="usage in status",
    )
    assert status["observedGeneration"] == 2
    assert status["usage"]["used"] >= 2
    assert status["usage"]["remaining"] == max(5 - status["usage"]["used"], 0)

    def printed_as_in_status() -> bool:  # usage moves every second: compare two reads that agree
        row = cluster.kubectl("get", "tq", "alpha", "-n", namespace, "--no-headers").stdout.split()
        used = cluster.get("tq/alpha", "-n", namespace)["status"]["usage"]["used"]
        return row[:5] == ["alpha", "alpha", "5", "60", str(used)] and row[5] == "True"

    eventually(printed_as_in_status, timeout=10, what="the printer columns showing the status")

    configmap = cluster.get("configmap/secure-llm-gateway-tenant-quotas", "-n", namespace)
    assert configmap["data"] == {"TENANT_QUOTAS": "alpha=5"}
    own = {s.name: s for s in _scrape(operator.url) if s.labels.get("result", "applied") == "applied"}
    assert own["tenantquota_reconciles_total"].value >= 2
    assert 0 <= own["tenantquota_last_sync_age_seconds"].value < 5

    cluster.kubectl("delete", "tq/alpha", "-n", namespace, "--wait=true", "--timeout=10s")
    eventually(lambda: limit_seen(gateway, "alpha") == "1000", what="the gateway back on the default")
    assert live_entry(redis_server, "alpha") is None
    assert cluster.get("configmap/secure-llm-gateway-tenant-quotas", "-n", namespace)["data"] == {
        "TENANT_QUOTAS": ""
    }


def test_a_token_budget_reaches_the_live_map_and_its_usage_the_status(
    cluster: Cluster, namespace: str, redis_server: RedisServer, start_operator: OperatorFactory
) -> None:
    start_operator()
    # A tenant id that reads as a key: the gateways name it in Redis by its pseudonym, and so must
    # the operator when it reads the counters.
    tokens = {"perWindow": 1000, "output": 300, "maxOutputTokens": 128}
    apply_tenantquota(cluster, namespace, "budget", tenant="sk-budget", requests=10, tokens=tokens)
    entry = eventually(lambda: live_entry(redis_server, "sk-budget"), what="the entry")
    assert entry == {
        "v": 1,
        "requests": 10,
        "window_secs": 60,
        "tokens": {"total": 1000, "output": 300, "max_output_tokens": 128},
        "namespace": namespace,
    }
    # Before any request: the whole budget left, no window.
    usage = eventually(
        lambda: cluster.get("tq/budget", "-n", namespace).get("status", {}).get("usage"),
        timeout=5,
        what="usage in status",
    )
    assert (usage["tokensUsed"], usage["tokensRemaining"], usage.get("tokensResetAt")) == (0, 300, None)

    # What the gateways write: the tokens reserved and charged in the window, which expires with it.
    counters = token_key(tenant_hash("sk-budget"))
    redis_server.client().hset(counters, mapping={"input": 400, "output": 250})
    redis_server.client().expire(counters, 600)
    usage = eventually(
        lambda: (u := cluster.get("tq/budget", "-n", namespace)["status"]["usage"])["tokensUsed"] and u,
        timeout=5,
        what="token usage in status",
    )
    assert (usage["tokensUsed"], usage["tokensRemaining"]) == (650, 50)  # output binds: 300 - 250
    reset = datetime.datetime.fromisoformat(usage["tokensResetAt"]) - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(seconds=590) < reset <= datetime.timedelta(seconds=600)
    [row] = table(cluster.kubectl("get", "tq", "budget", "-n", namespace).stdout)
    assert (row["TOKENS"], row["TOKENS USED"]) == ("1000", "650")

    # The budget taken out: out of the live map, and its numbers out of status.
    cluster.kubectl("patch", "tq/budget", "-n", namespace, "--type=merge", "-p", '{"spec":{"tokens":null}}')
    eventually(lambda: "tokens" not in (live_entry(redis_server, "sk-budget") or {}), what="no tokens entry")
    usage = eventually(
        lambda: "tokensUsed" not in (u := cluster.get("tq/budget", "-n", namespace)["status"]["usage"]) and u,
        timeout=5,
        what="no token usage in status",
    )
    assert set(usage) == {"used", "remaining"}


def test_the_status_shows_the_tokens_a_gateway_counted_against_the_budget(
    cluster: Cluster,
    namespace: str,
    redis_server: RedisServer,
    start_operator: OperatorFactory,
    gateway_factory: GatewayFactory,
) -> None:
    start_operator()
    gateway = gateway_factory(REDIS_URL=redis_server.url)
    apply_tenantquota(cluster, namespace, "omega", tenant="omega", requests=100, tokens={"perWindow": 5000})

    def token_limit_seen() -> str:
        response = httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "omega"}, timeout=5)
        return response.headers.get("x-ratelimit-limit-tokens", str(response.status_code))

    eventually(lambda: token_limit_seen() == "5000", what="the gateway enforcing the budget")

    def counted_and_shown() -> tuple[int, dict[str, Any]] | None:
        counters = redis_server.client().hgetall(token_key("omega"))
        counted = sum(int(counters.get(field, 0)) for field in (b"input", b"output"))
        usage = cluster.get("tq/omega", "-n", namespace).get("status", {}).get("usage", {})
        return (counted, usage) if usage.get("tokensUsed") == counted else None

    # The reservation (the output cap alone is DEFAULT_MAX_OUTPUT_TOKENS, 4096) is settled to the
    # tokens the mock reported, a few dozen.
    counted, usage = eventually(counted_and_shown, timeout=5, what="the gateway's count in status")
    assert 0 < counted < 1000
    assert usage["tokensRemaining"] == 5000 - counted
    assert usage["tokensResetAt"] is not None


def test_access_rules_reach_the_gateway(
    cluster: Cluster,
    namespace: str,
    redis_server: RedisServer,
    start_operator: OperatorFactory,
    gateway_factory: GatewayFactory,
) -> None:
    start_operator()
    gateway = gateway_factory(REDIS_URL=redis_server.url)
    apply_tenantquota(
        cluster, namespace, "beta", tenant="beta", requests=10, allowedModels=["gpt-4o"], suspended=True
    )

    def refusal() -> str:
        response = httpx.post(
            gateway.url + CHAT, json=chat_body(model="gpt-4o"), headers={"X-Api-Key": "beta"}
        )
        return str(response.json().get("error", {}).get("code")) if response.status_code == 403 else ""

    assert eventually(refusal, what="a 403") == "tenant_suspended"
    cluster.kubectl("patch", "tq/beta", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspended":false}}')
    eventually(lambda: refusal() == "", what="the suspension lifted")
    other = httpx.post(gateway.url + CHAT, json=chat_body(model="gpt-4o-mini"), headers={"X-Api-Key": "beta"})
    assert other.status_code == 403 and other.json()["error"]["code"] == "model_not_allowed"


def test_tier_groups_labels_and_namespace_reach_the_live_map_and_follow_a_relabel(
    cluster: Cluster, namespace: str, redis_server: RedisServer, start_operator: OperatorFactory
) -> None:
    start_operator()
    apply_tenantquota(
        cluster, namespace, "iota", tenant="iota", requests=3, tier="free", groups=["research", "eu"]
    )
    cluster.kubectl("label", "tq/iota", "-n", namespace, "team=search")
    entry = eventually(
        lambda: (e := live_entry(redis_server, "iota")) and "labels" in e and e, what="the labelled entry"
    )
    assert entry == {
        "v": 1,
        "requests": 3,
        "window_secs": 60,
        "tier": "free",
        "groups": ["eu", "research"],
        "namespace": namespace,
        "labels": {"team": "search"},
    }
    # A label change alone (no spec change) reaches the live map as quickly as a spec change.
    cluster.kubectl("label", "tq/iota", "-n", namespace, "--overwrite", "team=ads")
    eventually(
        lambda: (live_entry(redis_server, "iota") or {}).get("labels") == {"team": "ads"},
        what="the new label in the live map",
    )


def test_resync_repairs_a_flushed_redis(
    cluster: Cluster, namespace: str, redis_server: RedisServer, start_operator: OperatorFactory
) -> None:
    start_operator()
    apply_tenantquota(cluster, namespace, "gamma", tenant="gamma", requests=7)
    eventually(lambda: live_entry(redis_server, "gamma"), what="the entry")
    redis_server.client().hset("quota_map", "stray", b'{"v":1,"requests":1}')
    redis_server.client().flushall()
    redis_server.client().hset("quota_map", "stray", b'{"v":1,"requests":1}')
    eventually(lambda: live_entry(redis_server, "gamma"), timeout=5, what="the entry restored")
    eventually(lambda: live_entry(redis_server, "stray") is None, timeout=5, what="the stray entry removed")


def test_a_second_claim_on_a_tenant_is_reported_and_not_applied(
    cluster: Cluster, namespace: str, redis_server: RedisServer, start_operator: OperatorFactory
) -> None:
    start_operator()
    apply_tenantquota(cluster, namespace, "first", tenant="delta", requests=4)
    eventually(lambda: live_entry(redis_server, "delta"), what="the first claim applied")
    time.sleep(1.1)  # creation timestamps have one-second resolution
    apply_tenantquota(cluster, namespace, "second", tenant="delta", requests=99)
    conflict = eventually(
        lambda: condition(cluster, namespace, "second", "Conflict"), what="a Conflict condition"
    )
    assert conflict["status"] == "True" and f"{namespace}/first" in conflict["message"]
    assert live_entry(redis_server, "delta") == {
        "v": 1,
        "requests": 4,
        "window_secs": 60,
        "namespace": namespace,
    }
    # The older claim gone, the newer one takes over.
    cluster.kubectl("delete", "tq/first", "-n", namespace, "--wait=true", "--timeout=10s")
    eventually(
        lambda: (live_entry(redis_server, "delta") or {}).get("requests") == 99,
        what="the second claim applied",
    )


def test_without_the_servicemonitor_api_the_operator_reports_it_and_keeps_working(
    cluster: Cluster, namespace: str, redis_server: RedisServer, start_operator: OperatorFactory
) -> None:
    operator = start_operator()
    apply_tenantquota(cluster, namespace, "eps", tenant="eps", requests=2)
    eventually(lambda: live_entry(redis_server, "eps"), what="the entry")
    monitor = eventually(lambda: condition(cluster, namespace, "eps", "ServiceMonitor"), what="the condition")
    assert (monitor["status"], monitor["reason"]) == ("False", "APINotServed")
    assert operator.proc.poll() is None
    assert operator.output().count("ServiceMonitor API is not served") == 1


def test_a_redis_outage_is_retried_until_redis_is_back(
    cluster: Cluster, namespace: str, redis_server: RedisServer, start_operator: OperatorFactory
) -> None:
    operator = start_operator()
    redis_server.kill()
    apply_tenantquota(cluster, namespace, "zeta", tenant="zeta", requests=6)
    time.sleep(2)  # the first attempts fail and are scheduled again
    redis_server.start()
    entry = eventually(
        lambda: live_entry(redis_server, "zeta"), timeout=15, what="the entry after the outage"
    )
    assert entry["requests"] == 6
    assert operator.proc.poll() is None
    ready = eventually(lambda: condition(cluster, namespace, "zeta", "Ready"), what="Ready")
    assert ready["status"] == "True"


def test_on_a_redis_cluster_tenantquotas_reach_the_gateways_and_usage_comes_back(
    cluster: Cluster,
    namespace: str,
    redis_cluster: LocalCluster,
    start_operator: OperatorFactory,
    gateway_factory: GatewayFactory,
) -> None:
    """REDIS_CLUSTER=true on both sides: the operator's writes (hash, then revision, on different
    masters) reach the gateways, and it reads the tenant's usage from the tenant's master."""
    on_cluster = {"REDIS_URL": redis_cluster.url, "REDIS_CLUSTER": "true"}
    operator = start_operator(**on_cluster)
    gateway = gateway_factory(**on_cluster, DEFAULT_QUOTA="1000")
    assert limit_seen(gateway, "theta") == "1000"
    apply_tenantquota(cluster, namespace, "theta", tenant="theta", requests=4)
    eventually(lambda: limit_seen(gateway, "theta") == "4", timeout=5, what="the gateway enforcing 4")
    entry = redis_cluster.owner("quota_map").client().hget("quota_map", "theta")
    assert entry is not None and orjson.loads(entry)["requests"] == 4
    counted = int(redis_cluster.get(quota_key("theta")) or 0)  # no more requests from here on
    assert counted >= 2
    eventually(
        lambda: cluster.get("tq/theta", "-n", namespace)["status"].get("usage", {}).get("used") == counted,
        timeout=5,
        what="the counted usage in status",
    )
    assert operator.proc.poll() is None
    assert "CROSSSLOT" not in operator.output()
