"""What policies see of a request: each context attribute, computed only when read."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.core.apis import APIS
from llm_gateway.core.policy.facts import RequestContext, network_class
from llm_gateway.core.policy.schema import ACTIONS

CHAT = next(api for api in APIS if api.route == "/v1/chat/completions")


def context(payload: dict[str, Any], pii: list[str] | None = None) -> RequestContext:
    def found() -> list[str]:
        if pii is None:
            raise AssertionError("pii was computed without being read")
        return pii

    return RequestContext(payload, 123, True, CHAT.output_limits, found, 7, lambda: "private")


@pytest.mark.parametrize(
    ("payload", "name", "value"),
    [
        ({"max_tokens": 100}, "max_tokens", 100),
        ({"max_completion_tokens": "300", "max_tokens": 200}, "max_tokens", 300),
        ({"max_tokens": 12.5}, "max_tokens", 13),
        ({}, "max_tokens", None),
        ({"max_tokens": True}, "max_tokens", None),
        ({"tools": [{"type": "function"}]}, "has_tools", True),
        ({"tools": []}, "has_tools", False),
        ({"functions": [{"name": "f"}]}, "has_tools", True),
        ({"tools": "x"}, "has_tools", False),
        ({"messages": [{"content": [{"type": "image_url", "image_url": {}}]}]}, "has_images", True),
        ({"input": [{"content": [{"type": "input_image", "image_url": "x"}]}]}, "has_images", True),
        ({"messages": [{"content": [{"type": "image", "source": {}}]}]}, "has_images", True),
        ({"messages": [{"content": [{"type": ["image"]}, {"type": "text"}]}]}, "has_images", False),
        ({"messages": [{"content": "image_url"}]}, "has_images", False),
        ({}, "stream", True),
        ({}, "bytes", 123),
        ({}, "hour", 7),
        ({}, "client_network", "private"),
    ],
)
def test_context_attributes(payload: dict[str, Any], name: str, value: Any) -> None:
    assert context(payload).value(name) == value


def test_pii_is_a_sorted_set_computed_once() -> None:
    calls = []
    request = RequestContext(
        {}, 1, False, CHAT.output_limits, lambda: calls.append(1) or ["PHONE", "EMAIL", "PHONE"], 0, str
    )
    assert request.value("pii") == ("EMAIL", "PHONE")
    assert request.cedar(["pii", "max_tokens"]) == {"pii": ["EMAIL", "PHONE"]}
    assert calls == [1]


def test_deeply_nested_bodies_are_walked_without_recursion() -> None:
    node: Any = {"type": "image"}
    for _ in range(100_000):
        node = [node]
    assert context({"messages": node}).value("has_images") is True


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("10.1.2.3", "private"),
        ("192.168.0.9", "private"),
        ("fd00::1", "private"),
        ("169.254.1.1", "private"),
        ("8.8.8.8", "public"),
        ("2001:4860::8888", "public"),
        (None, "unknown"),
        ("", "unknown"),
        ("not-an-ip", "unknown"),
    ],
)
def test_network_class(address: str | None, kind: str) -> None:
    assert network_class(address) == kind


def test_every_api_names_a_schema_action() -> None:
    assert {api.action for api in APIS} <= set(ACTIONS)
