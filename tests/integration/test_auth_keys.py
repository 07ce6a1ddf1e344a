"""AUTH_MODE=keys against a real Redis: only keys in the live key map get in, by either header."""

from __future__ import annotations

import time

import httpx
import pytest

from llm_gateway.core.api_keys import KEYS_KEY, key_digest
from llm_gateway.core.quota_map import REV_KEY
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, assert_openai_error, chat_body
from tests.support import ManagedProcess, RedisServer

SECRET = "key-hash-secret-for-tests"
GOOD_KEY = "sk-tenant-a-4f1d0c9b8e7a"


def register(redis_server: RedisServer, key: str, tenant: str) -> None:
    client = redis_server.client()
    client.hset(KEYS_KEY, key_digest(SECRET.encode(), key.encode()), tenant)
    client.incr(REV_KEY)


def revoke(redis_server: RedisServer, key: str) -> None:
    client = redis_server.client()
    client.hdel(KEYS_KEY, key_digest(SECRET.encode(), key.encode()))
    client.incr(REV_KEY)


def status_becomes(gateway: ManagedProcess, key: str, status: int, timeout: float = 5.0) -> None:
    """Wait for the gateway's heartbeat to pick up a key-map change (it polls every second)."""
    deadline = time.monotonic() + timeout
    while True:
        code = httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": key}).status_code
        if code == status or time.monotonic() > deadline:
            assert code == status
            return
        time.sleep(0.1)


@pytest.fixture
def keyed_gateway(
    gateway_factory: GatewayFactory, mock: ManagedProcess, redis_server: RedisServer
) -> ManagedProcess:
    register(redis_server, GOOD_KEY, "tenantA")
    return gateway_factory(
        AUTH_MODE="keys",
        KEY_HASH_SECRET=SECRET,
        REDIS_URL=redis_server.url,
        DEFAULT_QUOTA="100",
        RPS="2",
        BURST="50",
    )


def test_a_registered_key_is_its_tenant_by_either_header(
    keyed_gateway: ManagedProcess, redis_server: RedisServer
) -> None:
    by_header = httpx.post(keyed_gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": GOOD_KEY})
    by_bearer = httpx.post(
        keyed_gateway.url + CHAT, json=chat_body(), headers={"Authorization": f"Bearer {GOOD_KEY}"}
    )
    assert (by_header.status_code, by_bearer.status_code) == (200, 200)
    assert by_bearer.headers["x-ratelimit-remaining-requests"] == "98"  # one tenant, one quota
    keys = {key.decode() for key in redis_server.client().keys("*")}
    assert "quota:{tenantA}" in keys
    digest = key_digest(SECRET.encode(), GOOD_KEY.encode())
    assert f"ratelimit:{{tenantA}}:key:{digest[:16]}" in keys  # in the tenant's cluster slot
    assert not any(GOOD_KEY in key for key in keys)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"X-Api-Key": "sk-made-up-1234567890"}, "invalid_api_key"),
        ({"Authorization": "Bearer sk-made-up-1234567890"}, "invalid_api_key"),
        ({"X-Api-Key": GOOD_KEY[:-1]}, "invalid_api_key"),
    ],
)
def test_anything_else_gets_401_without_the_key_echoed(
    keyed_gateway: ManagedProcess, mock: ManagedProcess, headers: dict[str, str], code: str
) -> None:
    response = httpx.post(keyed_gateway.url + CHAT, json=chat_body(), headers=headers)
    assert_openai_error(response, 401, code)
    assert "sk-made-up" not in response.text and GOOD_KEY[:-1] not in response.text
    models = httpx.get(keyed_gateway.url + "/v1/models", headers=headers)
    assert_openai_error(models, 401, code)
    assert httpx.get(mock.url + "/_mock/stats").json()["requests"] == 0


def test_keys_are_added_and_revoked_live(keyed_gateway: ManagedProcess, redis_server: RedisServer) -> None:
    new_key = "sk-tenant-b-77aa00ee"
    status_becomes(keyed_gateway, new_key, 401)
    register(redis_server, new_key, "tenantB")
    status_becomes(keyed_gateway, new_key, 200)
    revoke(redis_server, new_key)
    status_becomes(keyed_gateway, new_key, 401)
    status_becomes(keyed_gateway, GOOD_KEY, 200)


def test_the_map_survives_a_redis_outage_and_a_never_loaded_map_answers_503(
    gateway_factory: GatewayFactory, keyed_gateway: ManagedProcess, redis_server: RedisServer
) -> None:
    redis_server.kill()
    time.sleep(1.5)  # a heartbeat fails: the gateway keeps its last map and the local quota share
    ok = httpx.post(keyed_gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": GOOD_KEY})
    assert ok.status_code == 200
    bad = httpx.post(keyed_gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "sk-nope-123456"})
    assert_openai_error(bad, 401, "invalid_api_key")

    cold = gateway_factory(AUTH_MODE="keys", KEY_HASH_SECRET=SECRET, REDIS_URL=redis_server.url)
    response = httpx.post(cold.url + CHAT, json=chat_body(), headers={"X-Api-Key": GOOD_KEY})
    assert_openai_error(response, 503, "quota_backend_unavailable")
    readiness = httpx.get(cold.url + "/readyz")
    assert readiness.status_code == 503 and readiness.json()["checks"]["api_keys"] == "not loaded yet"
    assert httpx.get(keyed_gateway.url + "/readyz").json()["checks"]["api_keys"] == "1 registered"
