"""The routing table (pure): exact names first, then patterns in order, else the default."""

from __future__ import annotations

import pytest

from llm_gateway.core.routing import ModelRoute, Route, RoutingTable

TABLE = RoutingTable(
    (
        ModelRoute("claude-*", "claude"),
        ModelRoute("gpt-4o-eu", "azure", "eu-deployment"),
        ModelRoute("*-eu", "eu-compatible"),
        ModelRoute("llama-3*-instruct", "local", "meta/llama"),
        ModelRoute("claude-legacy", "old-claude"),
    ),
    "default",
)


@pytest.mark.parametrize(
    ("model", "route"),
    [
        ("claude-sonnet-4", Route("claude", "claude-sonnet-4")),
        ("claude-legacy", Route("old-claude", "claude-legacy")),  # exact beats an earlier pattern
        ("gpt-4o-eu", Route("azure", "eu-deployment")),
        ("mistral-eu", Route("eu-compatible", "mistral-eu")),
        ("llama-3.1-8b-instruct", Route("local", "meta/llama")),
        ("llama-3.1-8b", Route("default", "llama-3.1-8b")),
        ("gpt-4o-mini", Route("default", "gpt-4o-mini")),
        ("claude", Route("default", "claude")),  # `claude-*` needs the dash
        ("a.b+c(d)-eu", Route("eu-compatible", "a.b+c(d)-eu")),  # pattern text is literal but for *
        ("line\nbreak-eu", Route("eu-compatible", "line\nbreak-eu")),
    ],
)
def test_routes(model: str, route: Route) -> None:
    assert TABLE.route(model) == route


def test_a_pattern_of_regex_characters_matches_only_literally() -> None:
    table = RoutingTable((ModelRoute("a.c*", "x"),), "default")
    assert table.route("a.c-1").upstream == "x"
    assert table.route("abc-1").upstream == "default"
