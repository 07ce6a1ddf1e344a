"""Tenant policies through the real gateway, Redis and mock, called with the official SDKs: the
decision table (policies/decisions.yaml), publication through the live map, and the decision log."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
import yaml

from llm_gateway.core.policy.documents import PolicyDocument
from llm_gateway.core.policy.published import POLICY_MAP_KEY, encode_policy
from llm_gateway.core.quota_map import MAP_KEY, REV_KEY, TenantEntry, encode_entry
from tests.conftest import GatewayFactory
from tests.integration.chat import anthropic_routing, metric_value
from tests.support import ManagedProcess, RedisServer

TABLE = yaml.safe_load((Path(__file__).parent / "policies" / "decisions.yaml").read_text())["cases"]
POLICY_FILE = "policies.cedar"
IMAGE = "data:image/png;base64,iVBORw0KGgo="
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
ANTHROPIC_TOOL = {"name": "lookup", "input_schema": {"type": "object"}}


def entry(spec: dict[str, Any]) -> TenantEntry:
    return TenantEntry(
        requests=1_000_000,
        tier=spec.get("tier"),
        groups=frozenset(spec.get("groups", [])),
        namespace=spec.get("namespace"),
        labels=tuple(sorted(spec.get("labels", {}).items())),
        allowed_models=frozenset(spec["allowed_models"]) if "allowed_models" in spec else None,
        suspended=spec.get("suspended", False),
    )


def policy_text(case: dict[str, Any]) -> str:
    hour = time.gmtime().tm_hour
    return case["policies"].replace("{hour}", str(hour)).replace("{other_hour}", str((hour + 12) % 24))


def openai_message(request: dict[str, Any]) -> dict[str, Any]:
    text = request.get("text", "hello")
    if request.get("image"):
        return {
            "role": "user",
            "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": IMAGE}}],
        }
    return {"role": "user", "content": text}


def call(gateway: ManagedProcess, request: dict[str, Any]) -> Any:
    """Make ``request``'s call with the official SDK; what it returned (raises the SDK's errors)."""
    key = request["tenant"]
    with (
        openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0) as client,
        anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0) as claude,
    ):
        return sdk_call(client, claude, request)


def sdk_call(client: openai.OpenAI, claude: anthropic.Anthropic, request: dict[str, Any]) -> Any:
    model, kind = request["model"], request["call"]
    limit = {"max_tokens": request["max_tokens"]} if "max_tokens" in request else {}
    tools = {"tools": [TOOL]} if request.get("tools") else {}
    if kind in ("chat", "chat_stream"):
        answer = client.chat.completions.create(
            model=model, messages=[openai_message(request)], stream=kind == "chat_stream", **limit, **tools
        )
        return list(answer) if kind == "chat_stream" else answer
    if kind == "responses":
        output = {"max_output_tokens": request["max_tokens"]} if "max_tokens" in request else {}
        return client.responses.create(model=model, input=request.get("text", "hello"), **output)
    if kind == "embeddings":
        return client.embeddings.create(model=model, input=request.get("text", "hello"))
    if kind == "completions":
        return client.completions.create(model=model, prompt=request.get("text", "hello"), **limit)
    if kind == "models":
        return {m.id for m in client.models.list()}
    messages: list[Any] = [{"role": "user", "content": request.get("text", "hello")}]
    anthropic_tools = {"tools": [ANTHROPIC_TOOL]} if request.get("tools") else {}
    if kind == "count_tokens":
        return claude.messages.count_tokens(model=model, messages=messages, **anthropic_tools)
    assert kind == "messages", kind
    return claude.messages.create(
        model=model, max_tokens=request.get("max_tokens", 100), messages=messages, **anthropic_tools
    )


@pytest.mark.parametrize("case", TABLE, ids=[case["name"] for case in TABLE])
def test_decision_table(
    case: dict[str, Any],
    gateway_factory: GatewayFactory,
    mock: ManagedProcess,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    client = redis_server.client()
    for tenant, spec in case.get("tenants", {}).items():
        client.hset(MAP_KEY, tenant, encode_entry(entry(spec)))
    (tmp_path / POLICY_FILE).write_text(policy_text(case))
    gateway = gateway_factory(
        REDIS_URL=redis_server.url,
        POLICY_PATH=str(tmp_path / POLICY_FILE),
        ROUTING_FILE=anthropic_routing(tmp_path, mock.url),
        ANTHROPIC_API_KEY="sk-ant-gateway-0123456789",
        **case.get("settings", {}),
    )
    for request in case["requests"]:
        expected, why = request["expect"], request["why"]
        if request["call"] == "models":
            listed = request["model"] in call(gateway, request)
            assert listed == (expected == "listed"), why
            continue
        if expected == "allow":
            assert call(gateway, request) is not None, why
            continue
        with pytest.raises((openai.PermissionDeniedError, anthropic.PermissionDeniedError)) as denied:
            call(gateway, request)
        error = denied.value.body
        error = error.get("error", error) if isinstance(error, dict) else error
        assert denied.value.status_code == 403, why
        if expected == "forbidden":
            assert error["code"] == request["code"], why
            continue
        named = [f"{POLICY_FILE}:{policy_id}" for policy_id in request["denied_by"]]
        message = error["message"]
        if isinstance(denied.value, openai.PermissionDeniedError):
            assert error["code"] == "policy_denied", why
        else:
            assert error["type"] == "permission_error", why
        if named:
            assert all(repr(policy_id) in message for policy_id in named), (why, message)
            assert message.count(f"'{POLICY_FILE}:") == len(named), (why, message)
        else:
            assert message.endswith("no policy permits this request"), (why, message)
        assert "principal" not in message and "resource" not in message  # never the policy's text


def test_a_denied_request_costs_nothing_and_never_reaches_the_upstream(
    gateway_factory: GatewayFactory,
    mock: ManagedProcess,
    redis_server: RedisServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    (tmp_path / POLICY_FILE).write_text('@id("no") forbid (principal, action, resource == Model::"gpt-4o");')
    gateway = gateway_factory(
        REDIS_URL=redis_server.url, POLICY_PATH=str(tmp_path / POLICY_FILE), DEFAULT_QUOTA="1"
    )
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="t", max_retries=0)
    request.addfinalizer(client.close)
    for _ in range(3):
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert httpx.get(mock.url + "/_mock/stats").json()["requests"] == 0
    # the one unit of quota is still there
    assert client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert metric_value(gateway.url, 'quota_block_total{reason="quota_exceeded"}') == 0
    denials = f'gateway_policy_denials_total{{action="chat",policy="{POLICY_FILE}:no"}}'
    assert metric_value(gateway.url, denials) == 3


def published_decision(gateway: ManagedProcess, expected: int, timeout: float = 2.5) -> float:
    """Seconds until a chat request of tenant ``t`` for gpt-4o answers ``expected``."""
    started = time.monotonic()
    while True:
        status = httpx.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer t"},
        ).status_code
        waited = time.monotonic() - started
        if status == expected or waited > timeout:
            assert status == expected, f"still {status} after {waited:.1f} s"
            return waited
        time.sleep(0.05)


def test_published_policies_apply_within_two_seconds_and_invalid_ones_are_left_out(
    gateway_factory: GatewayFactory, redis_server: RedisServer, tmp_path: Path
) -> None:
    gateway = gateway_factory(REDIS_URL=redis_server.url)
    client = redis_server.client()
    published_decision(gateway, 200)

    def publish(name: str, text: str) -> None:
        client.hset(POLICY_MAP_KEY, name, encode_policy(PolicyDocument(name, text)))
        client.incr(REV_KEY)

    publish("team-a/block", '@id("block") forbid (principal, action, resource == Model::"gpt-4o");')
    assert published_decision(gateway, 403) < 2.0
    publish(
        "team-a/block", 'forbid (principal, action, resource == Model::"gpt-4o") when { context.stream };'
    )
    assert published_decision(gateway, 200) < 2.0
    publish("team-a/block", '@id("block") forbid (principal, action, resource == Model::"gpt-4o");')
    assert published_decision(gateway, 403) < 2.0
    publish("team-b/broken", "forbid (principal, action, resource) when { context.nope };")  # never applied
    client.hdel(POLICY_MAP_KEY, "team-a/block")
    client.incr(REV_KEY)
    assert published_decision(gateway, 200) < 2.0
    assert "published policy 'team-b/broken' ignored" in gateway.output()


def test_the_decision_log_names_the_policy_and_never_the_prompt(
    gateway_factory: GatewayFactory, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (tmp_path / POLICY_FILE).write_text(
        '@id("no-email") forbid (principal, action, resource) when { context.pii.contains("EMAIL") };'
    )
    gateway = gateway_factory(POLICY_PATH=str(tmp_path / POLICY_FILE), LOG_LEVEL="debug")
    client = openai.OpenAI(
        base_url=gateway.url + "/v1", api_key="sk-tenant-key-0123456789abcdef", max_retries=0
    )
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "secret-prompt jane@example.com"}]
        )
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "another-prompt"}])
    lines = [orjson.loads(line) for line in gateway.output().splitlines() if '"llm_gateway.policy"' in line]
    deny, allow = (next(line for line in lines if line["decision"] == d) for d in ("deny", "allow"))
    assert deny["policies"] == [f"{POLICY_FILE}:no-email"] and deny["action"] == "chat"
    assert deny["model"] == "gpt-4o" and deny["request_id"]
    assert allow["policies"] == ["gateway:default-allow"]
    logged = gateway.output()
    assert "secret-prompt" not in logged and "jane@example.com" not in logged
    assert "sk-tenant-key-0123456789abcdef" not in logged


def test_an_invalid_policy_file_stops_the_gateway_with_cedars_message(tmp_path: Path) -> None:
    from tests.support import gateway_start_up

    (tmp_path / "bad.cedar").write_text("forbid (principal, action, resource) when { context.nope };")
    result = gateway_start_up(
        {"POLICY_PATH": str(tmp_path), "OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://127.0.0.1:9"},
        tmp_path,
    )
    assert result.returncode == 2
    assert "POLICY_PATH: bad.cedar:" in result.stderr
    assert "attribute `nope` in context" in result.stderr
    assert "Traceback" not in result.stderr
