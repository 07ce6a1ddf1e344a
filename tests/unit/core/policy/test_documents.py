"""Policy documents: validated against the schema, ids that say where a policy came from."""

from __future__ import annotations

import pytest

from llm_gateway.core.policy.documents import (
    DEFAULT_ALLOW,
    MAX_DOCUMENT_CHARS,
    MAX_MESSAGE_CHARS,
    InvalidPolicy,
    PolicyDocument,
    compile_policies,
    validate,
)
from llm_gateway.core.policy.published import decode_policy, encode_policy
from llm_gateway.core.policy.schema import ACTIONS, CONTEXT_ATTRIBUTES, SCHEMA_TEXT


def test_ids_are_the_source_and_the_id_annotation_or_the_index() -> None:
    named = validate(
        PolicyDocument(
            "team-a/models",
            'permit (principal, action, resource);\n@id("cap") forbid (principal, action, resource)'
            " when { context has max_tokens && context.max_tokens > 10 };\n"
            'forbid (principal, action, resource) when { principal.tier == "free" };',
        )
    )
    assert list(named) == ["team-a/models:0", "team-a/models:cap", "team-a/models:2"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("forbid (principal, action, resource) when { context.nope };", "attribute `nope` in context"),
        ("forbid (principal, action, resource) when { principal.tier == 3 };", "type"),
        ('forbid (principal == User::"x", action, resource);', "User"),
        ("forbid (principal, action, resource", "unexpected end of input"),
        ("permit (principal == ?principal, action, resource);", "templates"),
        ("", "no policy"),
        (
            '@id("a") permit (principal, action, resource);\n@id("a") forbid (principal, action, resource);',
            "id",
        ),
    ],
)
def test_invalid_documents_carry_cedars_message(text: str, says: str) -> None:
    with pytest.raises(InvalidPolicy) as raised:
        validate(PolicyDocument("team-a/bad", text))
    assert says in str(raised.value)


def test_a_huge_message_is_cut() -> None:
    text = "\n".join(f"forbid (principal, action, resource) when {{ context.nope{n} }};" for n in range(200))
    with pytest.raises(InvalidPolicy) as raised:
        validate(PolicyDocument("x/y", text))
    assert len(str(raised.value)) == MAX_MESSAGE_CHARS


def test_compiling_names_the_document_that_fails_and_keeps_ids_apart() -> None:
    good = PolicyDocument("a/one", '@id("x") forbid (principal, action, resource) when { context.stream };')
    with pytest.raises(InvalidPolicy, match=r"^b/two: "):
        compile_policies([good, PolicyDocument("b/two", "forbid (")], default_allow=True)
    compiled = compile_policies(
        [good, PolicyDocument("b/two", '@id("x") permit (principal, action, resource);')], default_allow=True
    )
    assert compiled.ids == ("a/one:x", "b/two:x", DEFAULT_ALLOW)
    assert compiled.forbids == {"a/one:x"}
    assert compile_policies([good], default_allow=False).ids == ("a/one:x",)


def test_published_documents_round_trip_and_refuse_what_they_cannot_read() -> None:
    document = PolicyDocument("team-a/rules", "permit (principal, action, resource);", "everyone")
    assert decode_policy("team-a/rules", encode_policy(document)) == document
    for raw, says in [
        (b"[", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"v": 2, "source": ""}', "unsupported schema version 2"),
        (b'{"v": 1, "source": 3}', "must be strings"),
    ]:
        with pytest.raises(ValueError, match=says):
            decode_policy("f", raw)


def test_the_schema_declares_every_action_and_context_attribute() -> None:
    for action in ACTIONS:
        assert f" {action}" in SCHEMA_TEXT
    for name in CONTEXT_ATTRIBUTES:
        assert f"  {name}" in SCHEMA_TEXT


@pytest.mark.parametrize("parentheses", [1_000, 30_000])
def test_deeply_parenthesised_policies_are_parsed_without_overflowing_the_stack(parentheses: int) -> None:
    condition = "(" * parentheses + "context.stream" + ")" * parentheses
    text = f"forbid (principal, action, resource) when {{ {condition} }};"
    assert list(validate(PolicyDocument("a/deep", text))) == ["a/deep:0"]


def test_policies_nested_past_the_bound_are_refused_with_a_hint() -> None:
    chain = " || ".join(f"context.hour == {n}" for n in range(2_000))
    with pytest.raises(InvalidPolicy, match="nests deeper than 100 levels"):
        validate(PolicyDocument("a/chain", f"forbid (principal, action, resource) when {{ {chain} }};"))
    short = " || ".join(f"context.hour == {n}" for n in range(40))
    compiled = compile_policies(
        [PolicyDocument("a/short", f"forbid (principal, action, resource) when {{ {short} }};")],
        default_allow=True,
    )
    assert compiled.ids == ("a/short:0", DEFAULT_ALLOW)


def test_documents_past_the_size_bound_are_refused() -> None:
    text = "permit (principal, action, resource);" + " " * MAX_DOCUMENT_CHARS
    with pytest.raises(InvalidPolicy, match="longer than 65536 characters"):
        validate(PolicyDocument("a/big", text))
