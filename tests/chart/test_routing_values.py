"""``gateway.routing`` values rendered by the real Helm CLI into a routing file the gateway itself
accepts: upstreams and routes in a ConfigMap mounted at ``ROUTING_FILE``, keys from their Secrets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.routing_config import load_routing
from tests.chart.helm import CHART, helm, render

ROUTING = {
    "upstreams": [
        {
            "name": "claude",
            "kind": "anthropic",
            "baseUrl": "https://api.anthropic.com",
            "existingSecret": "anthropic",
            "existingSecretKey": "key",
        },
        {"name": "local-vllm", "kind": "openai-compatible", "baseUrl": "http://vllm:8000/v1"},
        {
            "name": "azure",
            "kind": "azure-openai",
            "baseUrl": "https://example.openai.azure.com",
            "apiVersion": "2024-10-21",
            "existingSecret": "azure",
            "headers": {"x-team": "platform: ai"},
        },
    ],
    "routes": [
        {"model": "claude-*", "upstream": "claude"},
        {"model": "llama-*", "upstream": "local-vllm", "upstreamModel": "meta/llama-3.1-8b"},
        {"model": "gpt-4o-eu", "upstream": "azure", "upstreamModel": "eu: deployment"},
        {
            "model": "gpt-4o",
            "deployments": [
                {"upstream": "default", "weight": 3},
                {"upstream": "azure", "upstreamModel": "gpt4o", "weight": 1},
                {"upstream": "local-vllm", "upstreamModel": "fallback", "priority": 1},
            ],
        },
    ],
}


def by_kind(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_routing_values_become_a_file_the_gateway_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render("--set-json", f"gateway.routing={json.dumps(ROUTING)}")
    routing = by_kind(objects, "ConfigMap", "rel-secure-llm-gateway-routing")["data"]["routing.yaml"]
    settings = by_kind(objects, "ConfigMap", "rel-secure-llm-gateway-gateway")["data"]
    assert settings["ROUTING_FILE"] == "/etc/secure-llm-gateway/routing.yaml"
    pod = by_kind(objects, "Deployment", "rel-secure-llm-gateway")["spec"]["template"]
    [gateway] = pod["spec"]["containers"]
    keys = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in gateway["env"] if e["name"].startswith("UPSTREAM_")
    }
    assert keys == {
        "UPSTREAM_CLAUDE_API_KEY": {"name": "anthropic", "key": "key"},
        "UPSTREAM_AZURE_API_KEY": {"name": "azure", "key": "api-key"},
    }
    assert {"name": "routing", "mountPath": "/etc/secure-llm-gateway", "readOnly": True} in gateway[
        "volumeMounts"
    ]
    assert "checksum/routing" in pod["metadata"]["annotations"]

    # What the pod would read, read by the gateway's own loader with the keys the Secrets provide.
    path = tmp_path / "routing.yaml"
    path.write_text(routing)
    monkeypatch.setenv("UPSTREAM_CLAUDE_API_KEY", "sk-ant")
    monkeypatch.setenv("UPSTREAM_AZURE_API_KEY", "az")
    loaded = load_routing(path)
    assert [(u.name, u.kind, u.base_url) for u in loaded.upstreams] == [
        ("claude", "anthropic", "https://api.anthropic.com"),
        ("local-vllm", "openai-compatible", "http://vllm:8000/v1"),
        ("azure", "azure-openai", "https://example.openai.azure.com"),
    ]
    assert loaded.upstreams[2].headers == {"x-team": "platform: ai"}
    assert loaded.upstreams[2].api_version == "2024-10-21"
    assert [
        (r.model, [(d.upstream, d.upstream_model, d.weight, d.priority) for d in r.group()])
        for r in loaded.routes
    ] == [
        ("claude-*", [("claude", None, 1, 0)]),
        ("llama-*", [("local-vllm", "meta/llama-3.1-8b", 1, 0)]),
        ("gpt-4o-eu", [("azure", "eu: deployment", 1, 0)]),
        ("gpt-4o", [("default", None, 3, 0), ("azure", "gpt4o", 1, 0), ("local-vllm", "fallback", 1, 1)]),
    ]


def test_without_routing_values_nothing_is_rendered_for_it() -> None:
    objects = render()
    assert not [o for o in objects if o["metadata"]["name"].endswith("-routing")]
    settings = by_kind(objects, "ConfigMap", "rel-secure-llm-gateway-gateway")["data"]
    assert "ROUTING_FILE" not in settings


@pytest.mark.parametrize(
    ("routing", "problem"),
    [
        ({"upstreams": [{"name": "x", "kind": "bedrock", "baseUrl": "https://h"}]}, "kind"),
        ({"upstreams": [{"name": "-bad", "kind": "openai", "baseUrl": "https://h"}]}, "name"),
        ({"routes": [{"model": "m"}]}, "oneOf"),
        ({"routes": [{"model": "m", "upstream": "a", "deployments": [{"upstream": "a"}]}]}, "oneOf"),
        ({"routes": [{"model": "m", "deployments": []}]}, "deployments: Array must have at least 1"),
        (
            {"routes": [{"model": "m", "deployments": [{"upstream": "a", "weight": 0}]}]},
            "weight: Must be greater than or equal to 1",
        ),
        (
            {"routes": [{"model": "m", "deployments": [{"upstream": "a", "priority": -1}]}]},
            "priority: Must be greater than or equal to 0",
        ),
        ({"routes": [{"model": "m", "deployments": [{"upstream": "a", "cost": 1}]}]}, "cost"),
    ],
)
def test_the_schema_refuses_bad_routing_values(routing: dict[str, Any], problem: str) -> None:
    result = helm(
        "template", "rel", str(CHART), "--set", "gateway.upstream.apiKey=k",
        "--set-json", f"gateway.routing={json.dumps(routing)}", check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert problem in result.stderr
