"""TenantPolicies through the operator as a real process, against a real kube-apiserver and Redis:
validated, published to the policy map with the revision bumped, withdrawn; and at a real gateway."""

from __future__ import annotations

import time
from typing import Any

import openai

from tests.conftest import GatewayFactory
from tests.k8s.cluster import Cluster
from tests.k8s.operator_support import (
    OperatorFactory,
    apply_tenantpolicy,
    apply_tenantquota,
    condition,
    eventually,
    limit_seen,
    published_policy,
    revision,
)
from tests.support import ManagedProcess, RedisServer

NO_STREAMS = '@id("no-streams")\nforbid (principal, action, resource) when { context.stream };'
NO_TOOLS = "forbid (principal, action, resource) when { context.has_tools };"


def ready(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    return condition(cluster, namespace, name, "Ready", resource="tp")


def test_apply_edit_delete_publish_and_withdraw_with_the_revision_bumped(
    cluster: Cluster, namespace: str, redis_server: RedisServer, start_operator: OperatorFactory
) -> None:
    start_operator()
    source = f"{namespace}/limits"
    apply_tenantpolicy(cluster, namespace, "limits", NO_STREAMS, "no streaming")
    assert eventually(lambda: published_policy(redis_server, source), what="the published policy") == {
        "v": 1,
        "source": NO_STREAMS,
        "description": "no streaming",
    }
    first = revision(redis_server)
    assert first >= 1
    condition_ = eventually(lambda: ready(cluster, namespace, "limits"), what="a Ready condition")
    assert (condition_["status"], condition_["reason"]) == ("True", "Published")
    status = cluster.get("tp/limits", "-n", namespace)["status"]
    assert (status["policyIds"], status["observedGeneration"]) == ([f"{source}:no-streams"], 1)

    # Resyncs (every second here) that find the policy in place write nothing and wake no gateway.
    time.sleep(2.5)
    assert revision(redis_server) == first

    apply_tenantpolicy(cluster, namespace, "limits", NO_STREAMS + "\n" + NO_TOOLS)
    eventually(
        lambda: (published_policy(redis_server, source) or {}).get("source", "").endswith(NO_TOOLS),
        what="the edited policy",
    )
    assert "description" not in (published_policy(redis_server, source) or {})
    assert revision(redis_server) > first
    status = eventually(
        lambda: (s := cluster.get("tp/limits", "-n", namespace)["status"])["observedGeneration"] == 2 and s,
        what="the edit in status",
    )
    assert status["policyIds"] == [f"{source}:no-streams", f"{source}:1"]

    edited = revision(redis_server)
    cluster.kubectl("delete", "tp/limits", "-n", namespace, "--wait=true", "--timeout=10s")
    assert published_policy(redis_server, source) is None  # withdrawn before the finalizer let it go
    assert revision(redis_server) > edited


def test_an_invalid_policy_is_reported_in_cedars_words_and_never_published(
    cluster: Cluster, namespace: str, redis_server: RedisServer, start_operator: OperatorFactory
) -> None:
    operator = start_operator()
    unknown = "forbid (principal, action, resource) when { context.temperature > 1 };"
    apply_tenantpolicy(cluster, namespace, "bad", unknown)
    refused = eventually(
        lambda: (c := ready(cluster, namespace, "bad")) and c["status"] == "False" and c,
        what="Ready=False",
    )
    assert refused["reason"] == "InvalidPolicy"
    assert "attribute `temperature` in context for Action::" in refused["message"]
    status = cluster.get("tp/bad", "-n", namespace)["status"]
    assert (status["policyIds"], status["observedGeneration"]) == ([], 1)
    assert redis_server.client().hgetall("policy_map") == {}
    [row] = cluster.kubectl("get", "tp", "bad", "-n", namespace, "--no-headers").stdout.splitlines()
    assert row.split()[:3] == ["bad", "False", "InvalidPolicy"]

    # Made valid: published. Broken again: not published, and the valid version stays in force.
    apply_tenantpolicy(cluster, namespace, "bad", NO_STREAMS)
    fixed = eventually(lambda: published_policy(redis_server, f"{namespace}/bad"), what="the fixed policy")
    ids = eventually(lambda: cluster.get("tp/bad", "-n", namespace)["status"]["policyIds"], what="the ids")
    published_at = revision(redis_server)
    apply_tenantpolicy(cluster, namespace, "bad", "permit (")
    again = eventually(  # the message tells this refusal from the first one
        lambda: (c := ready(cluster, namespace, "bad")) and "unexpected end of input" in c["message"] and c,
        what="Ready=False again, in Cedar's words",
    )
    assert (again["status"], again["reason"]) == ("False", "InvalidPolicy")
    assert "the last valid version, 1 policy, stays in force" in again["message"]
    assert cluster.get("tp/bad", "-n", namespace)["status"]["policyIds"] == ids
    time.sleep(2.5)  # resyncs change nothing, so they bump nothing
    assert published_policy(redis_server, f"{namespace}/bad") == fixed
    assert revision(redis_server) == published_at
    assert operator.proc.poll() is None


def test_resync_republishes_after_a_flush_and_withdraws_documents_no_tenantpolicy_backs(
    cluster: Cluster, namespace: str, redis_server: RedisServer, start_operator: OperatorFactory
) -> None:
    start_operator()
    apply_tenantpolicy(cluster, namespace, "kept", NO_STREAMS)
    eventually(lambda: published_policy(redis_server, f"{namespace}/kept"), what="the policy")
    redis_server.client().flushall()
    redis_server.client().hset(
        "policy_map", "elsewhere/gone", b'{"v":1,"source":"permit(principal,action,resource);"}'
    )
    eventually(lambda: published_policy(redis_server, f"{namespace}/kept"), timeout=5, what="the republish")
    eventually(
        lambda: published_policy(redis_server, "elsewhere/gone") is None,
        timeout=5,
        what="the stray withdrawn",
    )


def refusal(gateway: ManagedProcess, tenant: str, model: str) -> str:
    """What the official SDK raises for one chat call, as ``code: message``; "" when it succeeds."""
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=tenant, max_retries=0) as client:
        try:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        except openai.PermissionDeniedError as error:
            assert isinstance(error.body, dict)  # the gateway's OpenAI error object
            return f"{error.code}: {error.body['message']}"
    return ""


def test_a_tenantpolicy_and_its_edit_and_deletion_reach_a_gateway_within_two_seconds(
    cluster: Cluster,
    namespace: str,
    redis_server: RedisServer,
    start_operator: OperatorFactory,
    gateway_factory: GatewayFactory,
) -> None:
    start_operator()
    gateway = gateway_factory(REDIS_URL=redis_server.url)
    apply_tenantquota(
        cluster, namespace, "kappa", tenant="kappa", requests=500, tier="free", groups=["interns"]
    )
    cluster.kubectl("label", "tq/kappa", "-n", namespace, "team=search")
    eventually(lambda: limit_seen(gateway, "kappa") == "500", timeout=5, what="the tenant at the gateway")
    assert refusal(gateway, "kappa", "gpt-4o") == ""

    # The tier comes from the TenantQuota: free-tier tenants may not use gpt-4o.
    free_tier = (
        '@id("free-tier")\n'
        'forbid (principal, action, resource == Model::"gpt-4o") when { principal.tier == "free" };'
    )
    apply_tenantpolicy(cluster, namespace, "models", free_tier)
    denied = eventually(lambda: refusal(gateway, "kappa", "gpt-4o"), what="the policy's 403")
    assert denied == f"policy_denied: denied by policy '{namespace}/models:free-tier'"
    assert refusal(gateway, "kappa", "gpt-4o-mini") == ""

    # Edited: the groups, namespace and labels of the TenantQuota decide now, and the old rule is gone.
    interns = (
        '@id("search-interns")\n'
        'forbid (principal in Group::"interns", action == Action::"chat", resource == Model::"gpt-4o-mini")\n'
        f'when {{ principal in Namespace::"{namespace}" && principal.hasTag("team") '
        '&& principal.getTag("team") == "search" };'
    )
    apply_tenantpolicy(cluster, namespace, "models", interns)
    denied = eventually(lambda: refusal(gateway, "kappa", "gpt-4o-mini"), what="the edited policy's 403")
    assert denied == f"policy_denied: denied by policy '{namespace}/models:search-interns'"
    assert refusal(gateway, "kappa", "gpt-4o") == ""

    cluster.kubectl("delete", "tp/models", "-n", namespace, "--wait=false")
    eventually(lambda: refusal(gateway, "kappa", "gpt-4o-mini") == "", what="the request allowed again")
