"""What a client finds at the gateway's endpoints: models listed and retrieved per tenant, a 404
that says what exists, and CORS for browser clients when it is turned on."""

from __future__ import annotations

import time

import httpx
import openai
import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, assert_openai_error, chat_body
from tests.support import ManagedProcess, RedisServer


def sdk(gateway: ManagedProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def restrict(redis_server: RedisServer, tenant: str, **rules: object) -> None:
    client = redis_server.client()
    with client.pipeline(transaction=True) as tx:
        tx.hset("quota_map", tenant, orjson.dumps({"v": 1, "requests": 100, **rules}))
        tx.incr("quota_map:rev")
        tx.execute()


def test_models_are_retrieved_through_the_sdk(gateway: ManagedProcess, mock: ManagedProcess) -> None:
    with sdk(gateway, "sk-client-demo") as client:
        assert client.models.retrieve("gpt-4o").id == "gpt-4o"
        assert client.models.retrieve("org/model-7b").id == "org/model-7b"  # a slash in an id
        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve("no-such-model")
        assert caught.value.code == "model_not_found"  # the upstream's own answer
        assert {m.id for m in client.models.list()} == {"gpt-4o-mini", "gpt-4o", "org/model-7b"}


def test_a_tenant_sees_only_the_models_it_may_use(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    gateway = gateway_factory(REDIS_URL=redis_server.url)
    restrict(redis_server, "narrow", allowed_models=["gpt-4o-mini"])
    restrict(redis_server, "paused", suspended=True)
    time.sleep(2.0)  # the live map reaches the replica within 2 s
    with sdk(gateway, "narrow") as narrow, sdk(gateway, "paused") as paused, sdk(gateway, "free") as free:
        assert [m.id for m in narrow.models.list()] == ["gpt-4o-mini"]
        assert narrow.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
        with pytest.raises(openai.NotFoundError) as caught:
            narrow.models.retrieve("gpt-4o")  # exists upstream, not for this tenant: never asked upstream
        assert caught.value.code == "model_not_found"
        with pytest.raises(openai.PermissionDeniedError) as denied:
            paused.models.list()
        assert denied.value.code == "tenant_suspended"
        assert {m.id for m in free.models.list()} == {"gpt-4o-mini", "gpt-4o", "org/model-7b"}


@pytest.mark.parametrize(
    ("method", "path", "hint"),
    [
        ("POST", "/chat/completions", "/v1/chat/completions"),  # a base URL without /v1
        ("GET", "/models", "/v1/models"),
        ("GET", "/models/gpt-4o", "/v1/models/gpt-4o"),
        ("POST", "/embeddings", "/v1/embeddings"),
        ("POST", "/v1/images/generations", None),
        ("GET", "/v2/whatever", None),
    ],
)
def test_an_unknown_path_is_named_with_what_exists_and_a_hint(
    gateway: ManagedProcess, method: str, path: str, hint: str | None
) -> None:
    response = httpx.request(method, gateway.url + path, json=chat_body())
    message = assert_openai_error(response, 404, "not_found")["message"]
    assert f"{method} {path}" in message
    assert "POST /v1/chat/completions" in message and "GET /v1/models" in message
    assert (f"Did you mean {hint}?" in message) == (hint is not None)


def test_a_long_unknown_path_is_not_echoed_whole(gateway: ManagedProcess) -> None:
    response = httpx.get(gateway.url + "/" + "a" * 5000)
    assert len(assert_openai_error(response, 404)["message"]) < 600


def test_cors_is_off_by_default(gateway: ManagedProcess) -> None:
    preflight = httpx.options(
        gateway.url + CHAT,
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_when_on_serves_browser_clients_of_the_allowed_origins(gateway_factory: GatewayFactory) -> None:
    gateway = gateway_factory(CORS_ALLOW_ORIGINS="https://app.example.com")
    preflight = httpx.options(
        gateway.url + CHAT,
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-stainless-os" in preflight.headers["access-control-allow-headers"].lower()
    response = httpx.post(
        gateway.url + CHAT,
        json=chat_body(),
        headers={"Origin": "https://app.example.com", "Authorization": "Bearer sk-browser"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and "x-ratelimit-remaining-requests" in exposed
    other = httpx.options(
        gateway.url + CHAT,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
