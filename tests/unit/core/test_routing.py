"""The routing table (pure): exact names first, then patterns in order, else the default; a route's
deployments come lowest priority first."""

from __future__ import annotations

import pytest

from llm_gateway.core.routing import Deployment, ModelRoute, RoutingTable


def one(model: str, upstream: str, upstream_model: str | None = None) -> ModelRoute:
    return ModelRoute(model, (Deployment(upstream, upstream_model),))


TABLE = RoutingTable(
    (
        one("claude-*", "claude"),
        one("gpt-4o-eu", "azure", "eu-deployment"),
        one("*-eu", "eu-compatible"),
        one("llama-3*-instruct", "local", "meta/llama"),
        one("claude-legacy", "old-claude"),
        ModelRoute(
            "gpt-4o",
            (
                Deployment("backup", "gpt-4o-2024", priority=2),
                Deployment("default", weight=3),
                Deployment("azure", "gpt4o", priority=1),
                Deployment("other", weight=1),
            ),
        ),
    ),
    "default",
)


@pytest.mark.parametrize(
    ("model", "first"),
    [
        ("claude-sonnet-4", Deployment("claude")),
        ("claude-legacy", Deployment("old-claude")),  # exact beats an earlier pattern
        ("gpt-4o-eu", Deployment("azure", "eu-deployment")),
        ("mistral-eu", Deployment("eu-compatible")),
        ("llama-3.1-8b-instruct", Deployment("local", "meta/llama")),
        ("llama-3.1-8b", Deployment("default")),
        ("gpt-4o-mini", Deployment("default")),
        ("claude", Deployment("default")),  # `claude-*` needs the dash
        ("a.b+c(d)-eu", Deployment("eu-compatible")),  # pattern text is literal but for *
        ("line\nbreak-eu", Deployment("eu-compatible")),
    ],
)
def test_routes(model: str, first: Deployment) -> None:
    assert TABLE.route(model) == (first,)


def test_a_group_comes_lowest_priority_first_in_declared_order() -> None:
    assert [(d.upstream, d.priority) for d in TABLE.route("gpt-4o")] == [
        ("default", 0),
        ("other", 0),
        ("azure", 1),
        ("backup", 2),
    ]


def test_a_route_hands_out_the_same_group_every_time() -> None:
    """The router caches per group by identity: the table must not build groups per call."""
    assert TABLE.route("gpt-4o") is TABLE.route("gpt-4o")
    assert TABLE.route("mistral-eu") is TABLE.route("other-eu")
    assert TABLE.route("unrouted-1") is TABLE.route("unrouted-2")


def test_deployments_lists_every_deployment_by_name() -> None:
    """Names are upstream/model: one upstream listed with two weights is one deployment."""
    names = {d.name for d in TABLE.deployments()}
    assert names == {
        "default",
        "other",
        "claude",
        "old-claude",
        "eu-compatible",
        "azure/eu-deployment",
        "azure/gpt4o",
        "backup/gpt-4o-2024",
        "local/meta/llama",
    }


def test_exact_lists_models_routed_beyond_the_default() -> None:
    assert TABLE.exact() == {"gpt-4o-eu": "azure", "claude-legacy": "old-claude", "gpt-4o": "default"}


def test_a_pattern_of_regex_characters_matches_only_literally() -> None:
    table = RoutingTable((one("a.c*", "x"),), "default")
    assert table.route("a.c-1")[0].upstream == "x"
    assert table.route("abc-1")[0].upstream == "default"
