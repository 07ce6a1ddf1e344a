"""Which policies are in force, and what a deny says."""

from __future__ import annotations

import logging

import pytest

from llm_gateway.api.authorization import MAX_NAMED_POLICIES, Authorization
from llm_gateway.core.policy.documents import PolicyDocument
from llm_gateway.core.policy.facts import ModelFacts, RequestContext, TenantFacts
from llm_gateway.core.policy.published import encode_policy
from llm_gateway.core.token_budget import NO_OUTPUT
from llm_gateway.errors import PolicyDenied

TENANT = TenantFacts("acme", tier="free")
MODEL = ModelFacts("gpt-4o", "openai", ("default",), frozenset({"openai"}))


def context() -> RequestContext:
    return RequestContext({}, 0, False, NO_OUTPUT, list, 0, lambda: "loopback")


def published(**sources: str) -> dict[str, bytes]:
    return {name: encode_policy(PolicyDocument(name, text)) for name, text in sources.items()}


def test_invalid_published_documents_are_left_out_and_the_rest_apply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    denials: list[tuple[tuple[str, ...], str]] = []
    authorization = Authorization(
        [], default_allow=True, pseudonym=str, on_denied=lambda p, a: denials.append((p, a))
    )
    assert not authorization.active
    with caplog.at_level(logging.WARNING):
        authorization.replace_published(
            published(
                **{
                    "a/free": '@id("free") forbid (principal, action, resource)'
                    ' when { principal.tier == "free" };',
                    "b/broken": "forbid (principal, action, resource) when { context.nope };",
                }
            )
            | {"c/garbage": b"{"}
        )
    assert authorization.active
    assert (
        "published policy 'b/broken' ignored" in caplog.text
        and "'c/garbage' ignored: not JSON" in caplog.text
    )
    with pytest.raises(PolicyDenied, match=r"^denied by policy 'a/free:free'$"):
        authorization.check(TENANT, "chat", MODEL, context())
    assert denials == [(("a/free:free",), "chat")]
    authorization.replace_published({})
    assert not authorization.active
    authorization.check(TENANT, "chat", MODEL, context())


def test_unchanged_documents_are_not_validated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    authorization = Authorization([], default_allow=True, pseudonym=str)
    raw = published(**{"a/one": "forbid (principal, action, resource) when { context.stream };"})
    authorization.replace_published(raw)
    monkeypatch.setattr("llm_gateway.api.authorization.validate", lambda _: pytest.fail("validated again"))
    raw |= {"a/two": b'{"v": 1, "source": "permit (principal, action, resource);"}'}
    with pytest.raises(pytest.fail.Exception):
        authorization.replace_published(raw)
    del raw["a/two"]
    authorization.replace_published(raw)  # what applies already: nothing to do


def test_a_deny_names_a_bounded_number_of_policies() -> None:
    text = "\n".join(f'@id("p{n}") forbid (principal, action, resource);' for n in range(12))
    authorization = Authorization([PolicyDocument("many.cedar", text)], default_allow=True, pseudonym=str)
    with pytest.raises(PolicyDenied) as denied:
        authorization.check(TENANT, "chat", MODEL, context())
    assert denied.value.message.count("'many.cedar:") == MAX_NAMED_POLICIES
    assert denied.value.message.endswith(f" and {12 - MAX_NAMED_POLICIES} more")


def test_default_deny_without_any_policy_denies() -> None:
    authorization = Authorization([], default_allow=False, pseudonym=str)
    assert authorization.active
    with pytest.raises(PolicyDenied, match="no policy permits this request"):
        authorization.check(TENANT, "chat", MODEL, context())
