from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.core.policy.documents import InvalidPolicy, PolicyDocument
from llm_gateway.core.policy.published import decode_policy, encode_policy
from tenantquota_operator.policies import invalid_status, publication, published_status

TWO = """
@id("free-tier")
forbid (principal, action, resource == Model::"gpt-4o") when { principal.tier == "free" };
forbid (principal in Group::"interns", action, resource) when { context.has_tools };
"""


def test_a_valid_spec_is_published_under_namespace_and_name_with_its_policy_ids_in_order() -> None:
    published = publication("team-a", "models", {"policy": TWO, "description": "free tier rules"})
    assert published.document == PolicyDocument("team-a/models", TWO, "free tier rules")
    assert published.policy_ids == ("team-a/models:free-tier", "team-a/models:1")
    # What the gateways read back from the policy map.
    assert decode_policy("team-a/models", encode_policy(published.document)) == published.document


def test_the_description_is_optional() -> None:
    assert publication("ns", "p", {"policy": TWO}).document.description == ""


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (  # Cedar's own words, naming the attribute the schema does not declare
            {"policy": "forbid (principal, action, resource) when { context.temperature > 1 };"},
            "attribute `temperature` in context",
        ),
        ({"policy": "permit ("}, "unexpected end of input"),
        ({"policy": "// nothing but a comment"}, "no policy in the document"),
        ({"policy": "permit (principal == ?principal, action, resource);"}, "templates"),
        ({"policy": 'forbid (principal, action, resource) when { principal.team == "x" };'}, "team"),
        ({"policy": ["not", "a string"]}, "spec.policy and spec.description must be strings"),
        ({}, "spec.policy and spec.description must be strings"),
    ],
)
def test_an_invalid_spec_is_refused_with_cedars_message(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidPolicy, match=message.replace("?", r"\?")):
        publication("ns", "p", spec)


def test_the_published_status_lists_the_ids_and_is_ready() -> None:
    status = published_status([], 3, ("ns/p:free-tier", "ns/p:1"))
    assert status["observedGeneration"] == 3
    assert status["policyIds"] == ["ns/p:free-tier", "ns/p:1"]
    [ready] = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Published")
    assert ready["message"] == "2 policies in the policy map"
    assert published_status([], 1, ("ns/p:0",))["conditions"][0]["message"] == "1 policy in the policy map"


def test_the_invalid_status_gives_cedars_message_and_no_ids() -> None:
    earlier = [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    status = invalid_status(earlier, 4, "unexpected end of input")
    assert (status["observedGeneration"], status["policyIds"]) == (4, [])
    [ready] = status["conditions"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "InvalidPolicy",
        "unexpected end of input",
    )
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # still not ready: no transition


def test_an_invalid_edit_keeps_the_last_valid_version_in_force() -> None:
    status = invalid_status([], 5, "unexpected end of input", ("ns/p:a", "ns/p:b"))
    assert status["policyIds"] == ["ns/p:a", "ns/p:b"]
    [ready] = status["conditions"]
    assert ready["message"] == "unexpected end of input (the last valid version, 2 policies, stays in force)"
