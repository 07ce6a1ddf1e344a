"""PRIVACY_MODE=strict: a secret planted in prompts and API keys reaches no log, metric, span or Redis key.

Every code path that records something runs once with the canary in the request: success, stream,
4xx, upstream 5xx, timeout, quota block, redaction, a client leaving mid-stream. Then everything the
gateway stored or exported is searched for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import orjson

from llm_gateway.core.privacy import tenant_hash
from llm_gateway.core.quota import quota_key
from tests.conftest import UPSTREAM_KEY, GatewayFactory
from tests.integration.chat import CHAT, chat_body
from tests.otlp_receiver import OTLPReceiver
from tests.support import ManagedProcess, RedisServer

CANARY = "c4n4ry7f3e9a"
KEY = f"sk-{CANARY}-key"
QUOTA_KEY = f"sk-{CANARY}-quota"
PROMPT = f"the passphrase is {CANARY}-prompt; mail it to {CANARY}@example.com"
HASH_KEY = "tenant-hash-key-for-tests"


def redis_dump(redis_server: RedisServer) -> Iterator[bytes]:
    """Every key and every value held in Redis."""
    client = redis_server.client()
    for key in client.scan_iter():
        yield key
        kind = client.type(key)
        if kind == b"string":
            yield client.get(key) or b""
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                yield field + b"=" + value
        elif kind == b"zset":
            yield from client.zrange(key, 0, -1)
        else:
            raise AssertionError(f"unexpected Redis type {kind!r} for {key!r}")


def drive_every_path(gateway: ManagedProcess) -> list[int]:
    url = gateway.url + CHAT
    key = {"X-Api-Key": KEY}
    statuses = [
        httpx.post(url, json=chat_body(PROMPT, model="mock:echo"), headers=key).status_code,
        httpx.post(url, json=chat_body(PROMPT, model="mock:echo", stream=True), headers=key).status_code,
        httpx.post(url, json=chat_body(PROMPT, stream="yes"), headers=key).status_code,
        httpx.post(
            url,
            json=chat_body(PROMPT, model="mock:status=500,echo-auth"),
            headers={"Authorization": f"Bearer {KEY}"},
        ).status_code,
        httpx.post(url, json=chat_body(PROMPT, model="mock:latency-ms=1500"), headers=key).status_code,
        httpx.post(url, json=chat_body(PROMPT), headers={"X-Api-Key": QUOTA_KEY}).status_code,
        httpx.post(url, json=chat_body(PROMPT), headers={"X-Api-Key": QUOTA_KEY}).status_code,
    ]
    with httpx.stream(
        "POST",
        url,
        json=chat_body(PROMPT * 50, model="mock:echo,inter-token-ms=20", stream=True),
        headers=key,
    ) as response:
        statuses.append(response.status_code)
        next(response.iter_bytes())  # then leave mid-stream
    return statuses


def test_a_planted_secret_reaches_no_log_metric_span_or_redis_key(
    gateway_factory: GatewayFactory,
    mock: ManagedProcess,
    redis_server: RedisServer,
    otlp_receiver: OTLPReceiver,
) -> None:
    gateway = gateway_factory(
        PRIVACY_MODE="strict",
        TENANT_HASH_KEY=HASH_KEY,
        REDIS_URL=redis_server.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url,
        TENANT_QUOTAS=f"{QUOTA_KEY}=1",
        TIMEOUT_SECS="0.5",
        LOG_LEVEL="debug",
    )
    statuses = drive_every_path(gateway)
    assert statuses == [200, 200, 400, 502, 504, 200, 429, 200]
    otlp_receiver.wait_for(14)  # every request's server span, and the client spans, exported
    metrics = httpx.get(gateway.url + "/metrics").text
    time.sleep(0.3)  # the last access line is written when the abandoned stream's task ends
    gateway.stop()
    logs = gateway.output()

    assert CANARY not in logs
    assert UPSTREAM_KEY not in logs
    assert CANARY not in metrics
    assert not any(CANARY.encode() in body for body in otlp_receiver.raw)
    stored = list(redis_dump(redis_server))
    assert stored  # counters were written...
    assert not any(CANARY.encode() in item for item in stored)  # ...under pseudonyms only

    pseudonym = tenant_hash(KEY, HASH_KEY.encode())
    assert quota_key(pseudonym).encode() in stored
    access = [orjson.loads(line) for line in logs.splitlines() if '"logger":"llm_gateway.access"' in line]
    assert [line["status"] for line in access] == statuses
    assert access[-1]["stream_outcome"] == "client_cancelled"
    tenants = {pseudonym, tenant_hash(QUOTA_KEY, HASH_KEY.encode()), None}  # None: refused before admission
    assert {line["tenant"] for line in access} == tenants
    assert all(len(line["request_id"]) == 16 and line["latency_ms"] > 0 for line in access)
    assert access[0]["input_tokens"] > 0 and access[0]["model"] == "mock:echo"
    assert access[4]["error"] == "upstream_timeout"


def test_the_request_id_header_names_the_access_line(
    gateway_factory: GatewayFactory, mock: ManagedProcess
) -> None:
    gateway = gateway_factory()
    response = httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "t1"})
    request_id = response.headers["x-request-id"]
    gateway.stop()
    [line] = [orjson.loads(line) for line in gateway.output().splitlines() if request_id in line]
    assert line["status"] == 200 and line["route"] == CHAT and line["tenant"] == tenant_hash("t1")


def test_standard_mode_keeps_the_replaced_gateways_key_layout(
    gateway_factory: GatewayFactory, mock: ManagedProcess, redis_server: RedisServer
) -> None:
    gateway = gateway_factory(REDIS_URL=redis_server.url)
    assert httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "demo"}).status_code == 200
    assert redis_server.client().get("quota:{demo}") == b"1"


def test_under_the_defaults_a_real_api_key_is_never_stored_in_clear(
    gateway_factory: GatewayFactory, mock: ManagedProcess, redis_server: RedisServer
) -> None:
    """An SDK still configured with a real OpenAI key sends it as the tenant (open auth, standard
    privacy): the counters exist, under the key's pseudonym; chosen names keep the old layout."""
    real_key = "sk-proj-" + "Q7mR2xK9vL4pT8nW" * 3
    gateway = gateway_factory(REDIS_URL=redis_server.url)
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=real_key, max_retries=0) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        client.models.list()
    assert (
        httpx.post(gateway.url + CHAT, json=chat_body(), headers={"X-Api-Key": "tenantA"}).status_code == 200
    )
    gateway.stop()
    stored = list(redis_dump(redis_server))
    assert not any(real_key.encode() in item or b"Q7mR2xK9" in item for item in stored)
    assert quota_key(tenant_hash(real_key)).encode() in stored  # (its rate-limit key has expired)
    assert quota_key("tenantA").encode() in stored  # a name a person chose: as it always was
    assert "Q7mR2xK9" not in gateway.output()
