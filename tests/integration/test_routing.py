"""The routing table, for real: upstreams of different kinds (real mocks), each model reaching the
right one with the right credentials, path and model name; a bad routing file refuses start-up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.conftest import UPSTREAM_KEY, GatewayFactory
from tests.otlp_receiver import OTLPReceiver
from tests.support import ManagedProcess, gateway_start_up, start_mock

AZURE_KEY = "azure-key-0123456789abcdef"


@pytest.fixture(scope="module")
def other_mocks(workdir: Path) -> Iterator[tuple[ManagedProcess, ManagedProcess]]:
    local, azure = start_mock(workdir), start_mock(workdir)
    yield local, azure
    local.stop()
    azure.stop()


def declared(name: str, kind: str, **fields: str) -> dict[str, str]:
    """An upstream as the routing file declares it."""
    return {"name": name, "kind": kind, "base_url": "http://upstream.invalid", **fields}


def last(mock: ManagedProcess) -> dict[str, object]:
    return dict(httpx.get(mock.url + "/_mock/last-request").json())


def routing_file(tmp_path: Path, local: ManagedProcess, azure: ManagedProcess) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "upstreams": [
                    {"name": "local", "kind": "openai-compatible", "base_url": local.url + "/v1"},
                    {
                        "name": "azure",
                        "kind": "azure-openai",
                        "base_url": azure.url,
                        "api_key_env": "AZURE_OPENAI_API_KEY",
                        "api_version": "2024-10-21",
                        "headers": {"x-team": "platform"},
                    },
                ],
                "routes": [
                    {"model": "llama-*", "upstream": "local", "upstream_model": "org/model-7b"},
                    {"model": "gpt-4o-eu", "upstream": "azure", "upstream_model": "eu-deployment"},
                ],
            }
        )
    )
    return path


def test_each_model_reaches_its_upstream_with_that_upstreams_credentials(
    gateway_factory: GatewayFactory,
    mock: ManagedProcess,
    other_mocks: tuple[ManagedProcess, ManagedProcess],
    tmp_path: Path,
) -> None:
    local, azure = other_mocks
    gateway = gateway_factory(
        ROUTING_FILE=str(routing_file(tmp_path, local, azure)), AZURE_OPENAI_API_KEY=AZURE_KEY
    )
    sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key="tenant-a", max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    with sdk:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
        sdk.chat.completions.create(model="llama-3-8b", messages=messages, stream=True)  # type: ignore[arg-type]
        answer = sdk.chat.completions.create(model="gpt-4o-eu", messages=messages)  # type: ignore[arg-type]
        sdk.embeddings.create(model="llama-embed", input="hi")

    default = last(mock)
    assert default["path"] == "/v1/chat/completions"
    assert default["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"  # type: ignore[index]

    to_local = last(local)
    assert to_local["path"] == "/v1/embeddings"  # the last of the two it served
    assert "authorization" not in to_local["headers"]  # type: ignore[operator]
    assert '"model":"org/model-7b"' in str(to_local["body"])

    to_azure = last(azure)
    assert to_azure["path"] == "/openai/deployments/eu-deployment/chat/completions"
    assert to_azure["query"] == "api-version=2024-10-21"
    headers = to_azure["headers"]
    assert headers["api-key"] == AZURE_KEY  # type: ignore[index]
    assert headers["x-team"] == "platform"  # type: ignore[index]
    assert "authorization" not in headers  # type: ignore[operator]
    assert answer.choices[0].message.content
    stats = httpx.get(local.url + "/_mock/stats").json()
    assert stats["streams_completed"] == 1


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (
            {"routes": [{"model": "x", "upstream": "nowhere"}]},
            "ROUTING_FILE: routes[0].upstream: no upstream named 'nowhere'",
        ),
        (
            {
                "upstreams": [
                    {"name": "a", "kind": "anthropic", "base_url": "http://h", "api_key_env": "UNSET_KEY"}
                ]
            },
            "ROUTING_FILE: upstreams[0]: api_key_env: UNSET_KEY is not set",
        ),
        (
            {"upstreams": [declared("a", "bedrock")]},
            "ROUTING_FILE: upstreams[0].kind: Input should be 'openai', 'azure-openai', 'anthropic' or "
            "'openai-compatible'",
        ),
        (
            {
                "upstreams": [
                    {"name": "z", "kind": "azure-openai", "base_url": "http://h", "api_key_env": "HOME"}
                ]
            },
            "ROUTING_FILE: upstreams[0]: api_version is required for kind azure-openai",
        ),
    ],
)
def test_a_bad_routing_file_refuses_start_up_with_a_line_per_problem(
    tmp_path: Path, document: dict[str, object], problem: str
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(document))
    result = gateway_start_up(
        {
            "OPENAI_API_KEY": UPSTREAM_KEY,
            "LISTEN_ADDR": "127.0.0.1:1",
            "ROUTING_FILE": str(path),
            "HOME": "/root",
        },
        tmp_path,
    )
    assert result.returncode == 2
    assert f"secure-llm-gateway: invalid configuration: {problem}" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_a_model_routed_to_an_upstream_of_another_api_family_is_refused_before_it_counts(
    gateway_factory: GatewayFactory, mock: ManagedProcess, tmp_path: Path
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "upstreams": [
                    {"name": "claude", "kind": "anthropic", "base_url": mock.url, "api_key_env": "K"}
                ],
                "routes": [{"model": "claude-*", "upstream": "claude"}],
            }
        )
    )
    gateway = gateway_factory(ROUTING_FILE=str(path), K="sk-ant-x", TENANT_QUOTAS="one=1")
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="one", max_retries=0) as sdk:
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.chat.completions.create(model="claude-sonnet-4", messages=[{"role": "user", "content": "hi"}])
        assert caught.value.code == "model_not_supported_here"
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert httpx.get(mock.url + "/_mock/stats").json()["requests"] == 1


def test_the_model_list_adds_the_routed_models_and_retrieves_them_without_their_upstream(
    gateway_factory: GatewayFactory,
    mock: ManagedProcess,
    other_mocks: tuple[ManagedProcess, ManagedProcess],
    tmp_path: Path,
) -> None:
    local, azure = other_mocks
    gateway = gateway_factory(
        ROUTING_FILE=str(routing_file(tmp_path, local, azure)), AZURE_OPENAI_API_KEY=AZURE_KEY
    )
    httpx.post(azure.url + "/_mock/reset").raise_for_status()
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="tenant-a", max_retries=0) as sdk:
        listed = {m.id: m.owned_by for m in sdk.models.list()}
        routed = sdk.models.retrieve("gpt-4o-eu")
    assert listed["gpt-4o-eu"] == "azure"  # routed exactly: listed, owned by its upstream
    assert listed["gpt-4o-mini"] == "openaimock"  # the default upstream's own list
    assert "llama-*" not in listed  # a pattern names no model
    assert (routed.id, routed.owned_by) == ("gpt-4o-eu", "azure")
    assert httpx.get(azure.url + "/_mock/stats").json()["requests"] == 0


def test_the_upstream_span_names_the_upstream_the_route_chose(
    gateway_factory: GatewayFactory,
    mock: ManagedProcess,
    other_mocks: tuple[ManagedProcess, ManagedProcess],
    tmp_path: Path,
    otlp_receiver: OTLPReceiver,
) -> None:
    local, azure = other_mocks
    gateway = gateway_factory(
        ROUTING_FILE=str(routing_file(tmp_path, local, azure)),
        AZURE_OPENAI_API_KEY=AZURE_KEY,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url,
    )
    body = {"model": "gpt-4o-eu", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(gateway.url + "/v1/chat/completions", json=body).status_code == 200
    [client] = [span for span in otlp_receiver.wait_for(2) if span.kind == 3]  # SpanKind CLIENT
    assert (client.attributes["server.address"], client.attributes["server.port"]) == (
        "127.0.0.1",
        azure.port,
    )


def test_a_caller_without_a_key_learns_nothing_about_routes(
    gateway_factory: GatewayFactory, mock: ManagedProcess, tmp_path: Path
) -> None:
    path = tmp_path / "routing.yaml"
    upstreams = [declared("claude", "anthropic", base_url=mock.url, api_key_env="K")]
    path.write_text(
        yaml.safe_dump({"upstreams": upstreams, "routes": [{"model": "claude-*", "upstream": "claude"}]})
    )
    gateway = gateway_factory(ROUTING_FILE=str(path), K="sk-ant-x", ALLOW_ANONYMOUS="false")
    body = {"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(gateway.url + "/v1/chat/completions", json=body).status_code == 401


@pytest.mark.parametrize("model", [".", ".."])
def test_a_model_name_cannot_leave_its_azure_deployment_path(
    gateway_factory: GatewayFactory,
    other_mocks: tuple[ManagedProcess, ManagedProcess],
    tmp_path: Path,
    model: str,
) -> None:
    _, azure = other_mocks
    path = tmp_path / "routing.yaml"
    upstreams = [declared("az", "azure-openai", base_url=azure.url, api_key_env="K", api_version="1")]
    path.write_text(yaml.safe_dump({"upstreams": upstreams, "routes": [{"model": "*", "upstream": "az"}]}))
    gateway = gateway_factory(ROUTING_FILE=str(path), K="azure-key")
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(gateway.url + "/v1/chat/completions", json=body).status_code == 200
    assert str(last(azure)["path"]).startswith("/openai/deployments/")


def test_a_routing_file_that_is_not_yaml_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("upstreams:\n  - {name: a, kind: openai\nroutes: []\n")
    result = gateway_start_up(
        {"OPENAI_API_KEY": UPSTREAM_KEY, "LISTEN_ADDR": "127.0.0.1:1", "ROUTING_FILE": str(path)}, tmp_path
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"secure-llm-gateway: invalid configuration: ROUTING_FILE: {path} is not YAML: ")
    assert "(line 3, column " in line
