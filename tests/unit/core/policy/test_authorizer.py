"""The cached decisions agree with Cedar evaluated in full, for any policies and requests."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.core.policy.authorizer import ALLOWED, Authorizer, PolicyDecision
from llm_gateway.core.policy.documents import DEFAULT_ALLOW, PolicyDocument, compile_policies
from llm_gateway.core.policy.facts import ModelFacts, RequestContext, TenantFacts
from llm_gateway.core.policy.schema import ACTIONS
from llm_gateway.core.token_budget import OutputLimits

LIMITS = OutputLimits(("max_tokens",), "max_tokens")

PRINCIPAL = [
    'principal.tier == "free"',
    'principal in Group::"research"',
    'principal == Tenant::"acme"',
    'principal.hasTag("team") && principal.getTag("team") == "search"',
    'principal in Namespace::"team-a"',
    'principal.name like "team-*"',
]
RESOURCE = [
    'resource.name like "gpt-4o*"',
    'resource in Upstream::"public"',
    'resource.upstream_kinds.contains("anthropic")',
    'resource == Model::"gpt-4o-mini"',
    'resource.api_family == "anthropic"',
]
ACTION = ['action == Action::"chat"', 'action in Action::"invoke"', 'action == Action::"models"']
CONTEXT = [
    "context.stream",
    "context has max_tokens && context.max_tokens > 1000",
    "!(context has max_tokens)",
    "context.has_tools",
    "context.has_images",
    'context.pii.contains("EMAIL")',
    "!context.pii.isEmpty()",
    "context.bytes > 500",
    "context.hour < 12",
    'context.client_network == "public"',
]
TENANTS = [
    TenantFacts("acme", tier="free"),
    TenantFacts("team-x", groups=frozenset({"research"}), namespace="team-a", labels=(("team", "search"),)),
    TenantFacts("bob", tier="paid", labels=(("team", "ads"),)),
    TenantFacts("naïve\nkey"),  # no Cedar literal: evaluated in full every time
    TenantFacts("bob", tier="free"),
    TenantFacts(""),
    TenantFacts("~~~~~"),
]
MODELS = [
    ModelFacts("gpt-4o", "openai", ("public",), frozenset({"openai"})),
    ModelFacts("gpt-4o-mini", "openai", ("public", "azure-eu"), frozenset({"openai", "azure-openai"})),
    ModelFacts("claude-sonnet-4", "anthropic", ("claude",), frozenset({"anthropic"})),
    ModelFacts('odd "model" \\ name', "openai", ("public",), frozenset({"openai"})),
]

conditions = st.lists(st.sampled_from(PRINCIPAL + RESOURCE + ACTION + CONTEXT), min_size=1, max_size=3)
SCOPES = [
    "principal",
    'principal == Tenant::"acme"',
    'principal in Group::"research"',
    'principal is Tenant in Tenant::"bob"',
    "principal is Tenant",
    'principal in Namespace::"team-a"',
]
policy = st.tuples(st.sampled_from(["permit", "forbid"]), conditions, st.booleans(), st.sampled_from(SCOPES))
contexts = st.fixed_dictionaries(
    {
        "stream": st.booleans(),
        "max_tokens": st.none() | st.integers(1, 5000),
        "tools": st.booleans(),
        "image": st.booleans(),
        "pii": st.lists(st.sampled_from(["EMAIL", "PHONE", "IBAN"]), max_size=2),
        "bytes": st.integers(0, 1000),
        "hour": st.integers(0, 23),
        "network": st.sampled_from(["loopback", "private", "public", "unknown"]),
    }
)
requests = st.tuples(st.sampled_from(TENANTS), st.sampled_from(ACTIONS), st.sampled_from(MODELS), contexts)


def cedar(effect: str, body: list[str], unless: bool, scope: str = "principal") -> str:
    return f"{effect} ({scope}, action, resource) {'unless' if unless else 'when'} {{ {' && '.join(body)} }};"


def context_of(values: dict[str, Any]) -> RequestContext:
    payload: dict[str, Any] = {"messages": []}
    if values["max_tokens"] is not None:
        payload["max_tokens"] = values["max_tokens"]
    if values["tools"]:
        payload["tools"] = [{"type": "function"}]
    if values["image"]:
        payload["messages"] = [{"content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    return RequestContext(
        payload,
        values["bytes"],
        values["stream"],
        LIMITS,
        lambda: values["pii"],
        values["hour"],
        lambda: values["network"],
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policies=st.lists(policy, min_size=1, max_size=6),
    default_allow=st.booleans(),
    asked=st.lists(requests, min_size=1, max_size=12),
)
def test_cached_decisions_equal_full_evaluation(
    policies: list[tuple[str, list[str], bool, str]], default_allow: bool, asked: list[Any]
) -> None:
    text = "\n".join(cedar(*p) for p in policies)
    authorizer = Authorizer(compile_policies([PolicyDocument("t/p", text)], default_allow=default_allow))
    for tenant, action, model, values in asked + asked + asked:  # evaluated, analysed, then looked up
        cached = authorizer.decide(tenant, action, model, context_of(values))
        assert cached == authorizer.decide_uncached(tenant, action, model, context_of(values))
    for tenant, action, _, values in asked:  # one decision for every model, when the policies make one
        alike = authorizer.decide_alike(tenant, action, listing_of(values))
        if alike is not None:
            for model in MODELS:
                assert alike == authorizer.decide_uncached(tenant, action, model, listing_of(values))


def listing_of(values: dict[str, Any]) -> RequestContext:
    """A model listing's context: no body, the hour and network of ``values``."""
    network = values["network"]
    return RequestContext({}, 0, False, LIMITS, list, values["hour"], lambda: network)


def compiled(text: str, *, default_allow: bool = True) -> Authorizer:
    return Authorizer(compile_policies([PolicyDocument("team-a/rules", text)], default_allow=default_allow))


def test_no_policy_allows_without_cedar() -> None:
    authorizer = Authorizer(None)
    assert authorizer.decide(TENANTS[0], "chat", MODELS[0], context_of(CONTEXTS_PLAIN)) is ALLOWED
    assert authorizer.reads(TENANTS[0], "chat", MODELS[0]) == ()


CONTEXTS_PLAIN: dict[str, Any] = {
    "stream": False,
    "max_tokens": None,
    "tools": False,
    "image": False,
    "pii": [],
    "bytes": 10,
    "hour": 3,
    "network": "loopback",
}


def test_a_deny_names_the_forbids_that_matched_not_the_permits() -> None:
    authorizer = compiled(
        '@id("free") forbid (principal, action, resource) when { principal.tier == "free" };'
    )
    decision = authorizer.decide(TENANTS[0], "chat", MODELS[0], context_of(CONTEXTS_PLAIN))
    assert decision == PolicyDecision(False, ("team-a/rules:free",))
    allowed = authorizer.decide(TENANTS[2], "chat", MODELS[0], context_of(CONTEXTS_PLAIN))
    assert allowed == PolicyDecision(True, (DEFAULT_ALLOW,))


def test_default_deny_names_no_policy_when_nothing_permits() -> None:
    authorizer = compiled(
        'permit (principal, action, resource) when { principal.tier == "paid" };', default_allow=False
    )
    assert authorizer.decide(TENANTS[0], "chat", MODELS[0], context_of(CONTEXTS_PLAIN)) == PolicyDecision(
        False
    )
    assert authorizer.decide(TENANTS[2], "chat", MODELS[0], context_of(CONTEXTS_PLAIN)) == PolicyDecision(
        True, ("team-a/rules:0",)
    )


def test_a_decision_reads_only_the_context_its_policies_name() -> None:
    authorizer = compiled(
        'forbid (principal, action, resource) when { principal.tier == "free" && context.hour < 8 };\n'
        "forbid (principal, action, resource) when { context has max_tokens && context.max_tokens > 4096 };"
    )
    assert authorizer.reads(TENANTS[2], "chat", MODELS[0]) == ("max_tokens", "hour")  # any policy's
    for _ in range(2):  # evaluated, then analysed
        for tenant in (TENANTS[0], TENANTS[2]):
            authorizer.decide(tenant, "chat", MODELS[0], context_of(CONTEXTS_PLAIN))
    assert authorizer.reads(TENANTS[0], "chat", MODELS[0]) == ("max_tokens", "hour")
    assert authorizer.reads(TENANTS[2], "chat", MODELS[0]) == ("max_tokens",)


def test_pii_is_looked_for_only_when_a_policy_reads_it() -> None:
    authorizer = compiled(
        'forbid (principal, action, resource) when { principal.tier == "free" && !context.pii.isEmpty() };'
    )
    asked: list[str] = []

    def request(tenant: TenantFacts) -> bool:
        def pii() -> list[str]:
            asked.append(tenant.name)
            return ["EMAIL"]

        context = RequestContext({}, 10, False, LIMITS, pii, 3, lambda: "loopback")
        return authorizer.decide(tenant, "chat", MODELS[0], context).allowed

    assert [request(TENANTS[0]) for _ in range(3)] == [False] * 3
    assert [request(TENANTS[2]) for _ in range(3)] == [True] * 3
    # Met first, a triple is evaluated with what any policy reads; analysed, only with what it needs:
    # the free tenant's decision depends on the PII found, the paid tenant's on no context at all.
    assert asked == ["acme", "acme", "acme", "bob"]


def test_caches_stay_bounded() -> None:
    authorizer = Authorizer(
        compile_policies(
            [PolicyDocument("t/p", "forbid (principal, action, resource) when { context.bytes > 5 };")],
            default_allow=True,
        ),
        max_entries=8,
    )
    for n in range(50):
        tenant = TenantFacts(f"tenant-{n}", tier=f"tier-{n}")
        for _ in range(3):
            context = RequestContext({}, n, False, LIMITS, list, 3, lambda: "loopback")
            assert authorizer.decide(tenant, "chat", MODELS[0], context).allowed == (n <= 5)
    assert len(authorizer._seen) == len(authorizer._triples) == len(authorizer._decisions) == 8


@pytest.mark.parametrize("action", ACTIONS)
def test_invoke_covers_every_call_that_sends_text_upstream_and_not_listing(action: str) -> None:
    authorizer = compiled('forbid (principal, action in Action::"invoke", resource);')
    allowed = authorizer.decide(TENANTS[2], action, MODELS[0], context_of(CONTEXTS_PLAIN)).allowed
    assert allowed == (action == "models")


@pytest.mark.parametrize(
    ("policy", "named", "triples"),
    [
        ('when { principal.tier == "free" }', frozenset(), 1),
        (
            'when { principal in Group::"g" && principal.hasTag("t") && principal.getTag("t") == "x" }',
            frozenset(),
            1,
        ),
        ("when { principal has tier }", frozenset(), 1),
        ('when { principal == Tenant::"acme" }', frozenset({"acme"}), 1),
        ('when { principal in [Tenant::"acme", Tenant::"key-3"] }', frozenset({"acme", "key-3"}), 2),
        ('when { principal.name like "team-*" }', None, 20),
        ("when { [principal].contains(principal) }", None, 20),
    ],
)
def test_tenants_no_policy_names_share_their_decisions(
    policy: str, named: frozenset[str] | None, triples: int
) -> None:
    authorizer = compiled(f"forbid (principal, action, resource) {policy};")
    assert authorizer.policies is not None and authorizer.policies.named_tenants == named
    for n in range(20):
        for _ in range(2):
            authorizer.decide(TenantFacts(f"key-{n}"), "chat", MODELS[0], context_of(CONTEXTS_PLAIN))
    assert len(authorizer._triples) == triples


@pytest.mark.parametrize(
    "scope",
    [
        'principal == Tenant::"acme"',
        'principal in Tenant::"acme"',
        'principal is Tenant in Tenant::"acme"',
    ],
)
def test_a_scope_naming_a_tenant_applies_to_it_alone(scope: str) -> None:
    authorizer = compiled(f"forbid ({scope}, action, resource);")
    assert authorizer.policies is not None and authorizer.policies.named_tenants == {"acme"}
    assert not authorizer.decide(TENANTS[0], "chat", MODELS[0], context_of(CONTEXTS_PLAIN)).allowed
    assert authorizer.decide(TENANTS[2], "chat", MODELS[0], context_of(CONTEXTS_PLAIN)).allowed
    assert authorizer.decide(TenantFacts(""), "chat", MODELS[0], context_of(CONTEXTS_PLAIN)).allowed


def test_threads_may_decide_at_once_with_full_caches() -> None:
    """A model listing is filtered in a worker thread while the loop decides requests."""
    import threading

    authorizer = Authorizer(
        compile_policies(
            [PolicyDocument("t/p", 'forbid (principal, action, resource) when { resource.name like "x*" };')],
            default_allow=True,
        ),
        max_entries=4,
    )
    failures: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(400):
                model = ModelFacts(f"m-{offset}-{n % 37}", "openai", ("default",), frozenset({"openai"}))
                authorizer.decide(TENANTS[n % 3], "chat", model, context_of(CONTEXTS_PLAIN))
        except BaseException as error:  # handed to the test's thread
            failures.append(error)

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_policy_that_fails_to_evaluate_is_named_in_the_decision() -> None:
    authorizer = compiled(
        '@id("overflow") forbid (principal, action, resource) when { context.bytes * 1000000000000000 > 5 };'
    )
    small = RequestContext({}, 10, False, LIMITS, list, 3, lambda: "loopback")
    assert authorizer.decide_uncached(TENANTS[2], "chat", MODELS[0], small) == PolicyDecision(
        False, ("team-a/rules:overflow",)
    )
    large = RequestContext({}, 20_000, False, LIMITS, list, 3, lambda: "loopback")
    for _ in range(3):
        decision = authorizer.decide(TENANTS[2], "chat", MODELS[0], large)
        assert decision == PolicyDecision(True, (DEFAULT_ALLOW,), ("team-a/rules:overflow",))
