"""Token budgets through real gateways, a real redis-server and the mock (which answers a fixed
twenty-word reply, a token a word, streamed a word an event, and ignores output limits, as an upstream
that overruns them would), read with the official OpenAI and Anthropic SDKs: reservations that fit
or not, settlement to the reported usage, refunds, disconnects, the mid-stream stop, the live map's
split limits, Redis down, and the bound across three replicas."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from llm_gateway.core.quota_map import MAP_KEY, REV_KEY, TenantEntry, TokenBudget, encode_entry
from tests.conftest import GatewayFactory
from tests.integration.chat import CHAT, anthropic_routing, assert_openai_error, chat_body
from tests.integration.scrape import scrape, value
from tests.support import ManagedProcess, RedisServer

REPLY_WORDS = 20  # the mock's fixed reply
PROMPT_TOKENS = 1  # "hi", a word
LOOSE = {"RPS": "100000", "BURST": "100000", "DEFAULT_QUOTA": "1000000"}
HI = [{"role": "user", "content": "hi"}]


def sdk(gateway: ManagedProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=30)


def body_bytes(**request: Any) -> int:
    """What a request body the OpenAI SDK sends weighs (the input reservation): orjson writes the same
    compact JSON for these plain bodies."""
    return len(orjson.dumps(request))


def ledger(redis_server: RedisServer, tenant: str) -> tuple[int, int]:
    counts = redis_server.client().hmget(f"tokens:{{{tenant}}}", ["input", "output"])
    return int(counts[0] or 0), int(counts[1] or 0)


def settled(redis_server: RedisServer, tenant: str, expected: tuple[int, int]) -> tuple[int, int]:
    """``tenant``'s ledger once it reads ``expected`` (or after 5 s, whatever it reads then): a request
    is settled just after its client got the last byte."""
    deadline = time.monotonic() + 5
    while (seen := ledger(redis_server, tenant)) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return seen


def anthropic_gateway(
    gateway_factory: GatewayFactory, mock: ManagedProcess, tmp_path: Path, **env: str
) -> ManagedProcess:
    """A gateway that routes ``claude-*`` and ``mock:*`` to the mock as an Anthropic upstream."""
    return gateway_factory(
        ROUTING_FILE=anthropic_routing(tmp_path, mock.url),
        ANTHROPIC_API_KEY="sk-ant-gateway-0123456789",
        **LOOSE,
        **env,
    )


def post(gateway: ManagedProcess, key: str, **request: Any) -> httpx.Response:
    return httpx.post(
        gateway.url + CHAT, json=request, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def test_an_answer_is_charged_its_reported_usage_and_the_headers_say_what_is_left(
    gateway_factory: GatewayFactory, store_env: dict[str, str]
) -> None:
    gateway = gateway_factory(DEFAULT_TOKEN_QUOTA="1000", **LOOSE, **store_env)
    client = sdk(gateway, "tenant-a")
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI, max_tokens=100)
    reserved = body_bytes(messages=HI, model="gpt-4o-mini", max_tokens=100) + 100
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    # Reported at admission: the whole reservation is held while the request runs.
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == 1000 - reserved
    assert first.headers["x-ratelimit-reset-tokens"].endswith("s")
    usage = first.parse().usage
    assert usage is not None
    second = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HI, max_tokens=100
    )
    # The first was settled to what it cost: the second sees only that spent, plus its own reservation.
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == 1000 - usage.total_tokens - reserved


@pytest.mark.parametrize(
    ("max_tokens", "should_retry"),
    [(900, "true"), (5000, "false")],  # fits once the window has room; can never fit
)
def test_a_reservation_that_does_not_fit_is_a_429_in_openais_tokens_shape(
    gateway_factory: GatewayFactory, redis_server: RedisServer, max_tokens: int, should_retry: str
) -> None:
    gateway = gateway_factory(
        DEFAULT_TOKEN_QUOTA="1000", TOKEN_QUOTA_WINDOW_SECS="5", REDIS_URL=redis_server.url, **LOOSE
    )
    assert post(gateway, "tenant-b", model="gpt-4o-mini", messages=HI, max_tokens=50).status_code == 200
    refused = post(gateway, "tenant-b", model="gpt-4o-mini", messages=HI, max_tokens=max_tokens)
    error = assert_openai_error(refused, 429, "rate_limit_exceeded")
    assert error["type"] == "tokens"
    assert "token budget" in error["message"]
    assert refused.headers["x-should-retry"] == should_retry
    assert refused.headers["x-ratelimit-limit-tokens"] == "1000"
    assert 0 < int(refused.headers["retry-after"]) <= 5
    # The refusal reserved nothing; the first was settled to its usage.
    assert settled(redis_server, "tenant-b", (PROMPT_TOKENS, REPLY_WORDS)) == (PROMPT_TOKENS, REPLY_WORDS)
    samples = scrape(gateway.url)
    assert value(samples, "quota_block_total", reason="tokens_exceeded") == 1
    with pytest.raises(openai.RateLimitError) as caught:
        sdk(gateway, "tenant-b").chat.completions.create(
            model="gpt-4o-mini", messages=HI, max_tokens=max_tokens
        )
    assert caught.value.code == "rate_limit_exceeded"


def test_a_request_naming_no_output_limit_reserves_the_cap_and_carries_it_upstream(
    gateway_factory: GatewayFactory, mock: ManagedProcess, redis_server: RedisServer
) -> None:
    gateway = gateway_factory(
        DEFAULT_TOKEN_QUOTA="100000", DEFAULT_MAX_OUTPUT_TOKENS="77", REDIS_URL=redis_server.url, **LOOSE
    )
    answer = post(gateway, "tenant-c", model="gpt-4o-mini", messages=HI)
    assert answer.status_code == 200
    sent = httpx.get(mock.url + "/_mock/last-request").json()["body"]
    assert orjson.loads(sent)["max_completion_tokens"] == 77
    assert (
        int(answer.headers["x-ratelimit-remaining-tokens"])
        == 100000 - body_bytes(model="gpt-4o-mini", messages=HI) - 77
    )
    # A tenant without a budget is forwarded as it came.
    plain = gateway_factory(**LOOSE)
    assert post(plain, "tenant-c", model="gpt-4o-mini", messages=HI).status_code == 200
    assert "max_completion_tokens" not in orjson.loads(
        httpx.get(mock.url + "/_mock/last-request").json()["body"]
    )


@pytest.mark.parametrize("status", ["500", "503", "429", "401"])
def test_a_request_that_failed_before_the_client_got_anything_gets_every_token_back(
    gateway_factory: GatewayFactory, redis_server: RedisServer, status: str
) -> None:
    gateway = gateway_factory(
        DEFAULT_TOKEN_QUOTA="1000", UPSTREAM_MAX_ATTEMPTS="1", REDIS_URL=redis_server.url, **LOOSE
    )
    failed = post(gateway, "tenant-d", model=f"mock:status={status}", messages=HI, max_tokens=100)
    assert failed.status_code >= 400
    assert settled(redis_server, "tenant-d", (0, 0)) == (0, 0)
    if status not in ("429", "503"):  # those relay the upstream's own wait instead of the tenant's room
        assert int(failed.headers["x-ratelimit-remaining-tokens"]) == 1000  # the headers say so too


def test_a_4xx_the_upstream_answered_costs_no_tokens(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    gateway = gateway_factory(DEFAULT_TOKEN_QUOTA="1000", REDIS_URL=redis_server.url, **LOOSE)
    assert post(gateway, "tenant-e", model="mock:status=400", messages=HI, max_tokens=100).status_code == 400
    assert settled(redis_server, "tenant-e", (0, 0)) == (0, 0)


def test_a_stream_past_its_reservation_ends_with_budget_exhausted_and_is_charged_what_it_delivered(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    gateway = gateway_factory(DEFAULT_TOKEN_QUOTA="10000", REDIS_URL=redis_server.url, **LOOSE)
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        stream = sdk(gateway, "tenant-f").chat.completions.create(
            model="gpt-4o-mini", messages=HI, max_tokens=5, stream=True
        )
        for part in stream:
            if part.choices and part.choices[0].delta.content:
                received.append(part.choices[0].delta.content)
    assert "budget_exhausted" in str(caught.value.body) or "output tokens" in caught.value.message
    assert len(received) == 5  # exactly what was reserved, never a word more
    reserved_input = body_bytes(messages=HI, model="gpt-4o-mini", max_tokens=5, stream=True)
    assert settled(redis_server, "tenant-f", (reserved_input, 5)) == (reserved_input, 5)
    assert value(scrape(gateway.url), "gateway_streams_total", outcome="budget_exhausted") == 1


def test_a_stream_within_its_reservation_is_charged_its_usage_and_not_cut(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    gateway = gateway_factory(DEFAULT_TOKEN_QUOTA="10000", REDIS_URL=redis_server.url, **LOOSE)
    parts = list(
        sdk(gateway, "tenant-g").chat.completions.create(
            model="gpt-4o-mini", messages=HI, max_tokens=REPLY_WORDS, stream=True
        )
    )
    assert sum(1 for p in parts if p.choices and p.choices[0].delta.content) == REPLY_WORDS
    assert all(p.usage is None for p in parts)  # usage asked for the budget, not shown unasked
    assert settled(redis_server, "tenant-g", (PROMPT_TOKENS, REPLY_WORDS)) == (PROMPT_TOKENS, REPLY_WORDS)


def test_a_client_that_leaves_mid_stream_is_charged_what_it_was_sent(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    gateway = gateway_factory(DEFAULT_TOKEN_QUOTA="10000", REDIS_URL=redis_server.url, **LOOSE)
    request = chat_body(model="mock:inter-token-ms=150", stream=True, max_tokens=100)
    seen = 0
    with httpx.stream(
        "POST", gateway.url + CHAT, json=request, headers={"X-Api-Key": "tenant-h"}, timeout=30
    ) as response:
        for line in response.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                seen += 1
                if seen == 4:
                    break
    deadline = time.monotonic() + 10
    while ledger(redis_server, "tenant-h")[1] in (0, 100) and time.monotonic() < deadline:
        time.sleep(0.05)
    tokens_in, tokens_out = ledger(redis_server, "tenant-h")
    assert tokens_in == len(orjson.dumps(request))  # no usage came: the reserved input
    assert 4 <= tokens_out <= 5  # what the gateway had sent when it saw the client go


def test_an_anthropic_stream_is_cut_with_an_error_event_the_sdk_raises(
    gateway_factory: GatewayFactory, mock: ManagedProcess, redis_server: RedisServer, tmp_path: Path
) -> None:
    gateway = anthropic_gateway(
        gateway_factory, mock, tmp_path, DEFAULT_TOKEN_QUOTA="10000", REDIS_URL=redis_server.url
    )
    client = anthropic.Anthropic(base_url=gateway.url, api_key="tenant-i", max_retries=0)
    admitted = client.messages.with_raw_response.create(
        model="claude-gateway-test", max_tokens=3, messages=HI
    )
    assert admitted.headers["anthropic-ratelimit-tokens-limit"] == "10000"
    assert (
        admitted.headers["anthropic-ratelimit-tokens-remaining"]
        == admitted.headers["x-ratelimit-remaining-tokens"]
    )
    settled(redis_server, "tenant-i", (PROMPT_TOKENS, REPLY_WORDS))  # the mock overran max_tokens: charged
    redis_server.client().delete("tokens:{tenant-i}")
    text: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="claude-gateway-test", max_tokens=3, messages=HI) as stream,
    ):
        text.extend(stream.text_stream)
    assert "output tokens" in str(caught.value.message)
    assert len(text) == 3
    tokens_in, tokens_out = settled(redis_server, "tenant-i", (PROMPT_TOKENS, 3))
    assert (tokens_in, tokens_out) == (
        PROMPT_TOKENS,
        3,
    )  # message_start told the input; three words delivered


def test_the_live_maps_split_limits_hold_output_apart_from_input(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    entry = TenantEntry(requests=1000, tokens=TokenBudget(input=100000, output=45, max_output_tokens=20))
    client.hset(MAP_KEY, "tenant-j", encode_entry(entry))
    client.incr(REV_KEY)
    gateway = gateway_factory(REDIS_URL=redis_server.url, **LOOSE)
    statuses = [post(gateway, "tenant-j", model="gpt-4o-mini", messages=HI).status_code for _ in range(4)]
    # Each reserves the cap of 20 output tokens and is charged 20: 45 fits two, never a third.
    assert statuses == [200, 200, 429, 429]
    assert settled(redis_server, "tenant-j", (2 * PROMPT_TOKENS, 40)) == (2 * PROMPT_TOKENS, 40)


def test_with_redis_down_each_replica_holds_its_share_of_the_budget(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    gateways = [
        gateway_factory(
            DEFAULT_TOKEN_QUOTA="600", REDIS_URL=redis_server.url, REDIS_TIMEOUT_MS="100", **LOOSE
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 10
    while redis_server.client().zcard("gateway_replicas") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # each replica's heartbeat has seen both
    redis_server.kill()
    cost = body_bytes(model="gpt-4o-mini", messages=HI, max_tokens=20) + 20  # reserved per request
    spent = PROMPT_TOKENS + REPLY_WORDS  # what each is charged
    for gateway in gateways:
        statuses = [
            post(gateway, "tenant-k", model="gpt-4o-mini", messages=HI, max_tokens=20).status_code
            for _ in range(12)
        ]
        # Each replica holds ceil(600 / 2) = 300 tokens: requests are admitted while what was
        # charged before leaves room for one more reservation (the whole 600 would admit all 12).
        admitted = 1 + (300 - cost) // spent
        assert statuses == [200] * admitted + [429] * (12 - admitted)


def test_three_replicas_and_48_concurrent_streams_never_deliver_more_than_the_budget(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    budget = 3000
    gateways = [
        gateway_factory(
            DEFAULT_TOKEN_QUOTA=str(budget),
            DEFAULT_MAX_OUTPUT_TOKENS="8",
            REDIS_URL=redis_server.url,
            **LOOSE,
        )
        for _ in range(3)
    ]
    delivered = asyncio.run(_stream_until_refused(gateways, "tenant-l", clients_per_gateway=16))
    # Without max_tokens every stream reserves its body and 8 output tokens, is cut at 8 words (the
    # mock sends 20), and is charged its reserved input and the 8 it delivered: never more than held.
    assert delivered["refused"] > 0
    assert delivered["output"] == 8 * delivered["streams"]
    assert delivered["input"] + delivered["output"] <= budget
    expected = (delivered["input"], delivered["output"])
    assert settled(redis_server, "tenant-l", expected) == expected


def test_three_replicas_are_exact_when_every_request_sets_max_tokens(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    budget = 2500
    gateways = [
        gateway_factory(DEFAULT_TOKEN_QUOTA=str(budget), REDIS_URL=redis_server.url, **LOOSE)
        for _ in range(3)
    ]
    delivered = asyncio.run(
        _stream_until_refused(gateways, "tenant-m", clients_per_gateway=16, max_tokens=REPLY_WORDS)
    )
    assert delivered["refused"] > 0
    # Every stream finished and reported its usage: the ledger is exactly what was delivered.
    assert delivered["output"] == REPLY_WORDS * delivered["streams"]
    expected = (PROMPT_TOKENS * delivered["streams"], REPLY_WORDS * delivered["streams"])
    assert sum(expected) == delivered["usage"] <= budget
    assert settled(redis_server, "tenant-m", expected) == expected


async def _stream_until_refused(
    gateways: list[ManagedProcess], tenant: str, *, clients_per_gateway: int, max_tokens: int | None = None
) -> dict[str, int]:
    """``clients_per_gateway`` clients on each gateway stream one request after another until each is
    refused (at most 40 each); what they received, summed: streams completed or cut, output words,
    input reserved (body bytes) and the usage reported (``stream_options.include_usage``)."""
    totals = {"streams": 0, "output": 0, "input": 0, "usage": 0, "refused": 0}
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}}
    if max_tokens is not None:
        extra["max_tokens"] = max_tokens

    async def one_client(gateway: ManagedProcess) -> None:
        async with openai.AsyncOpenAI(
            base_url=gateway.url + "/v1", api_key=tenant, max_retries=0, timeout=60
        ) as client:
            for _ in range(40):
                try:
                    stream = await client.chat.completions.create(
                        model="mock:inter-token-ms=5", messages=HI, stream=True, **extra
                    )
                    words = 0
                    try:
                        async for part in stream:
                            if part.choices and part.choices[0].delta.content:
                                words += 1
                            if part.usage is not None:
                                totals["usage"] += part.usage.total_tokens
                    except openai.APIError:
                        pass  # cut at its reservation: what came before it was delivered
                except openai.RateLimitError:
                    totals["refused"] += 1
                    return
                totals["streams"] += 1
                totals["output"] += words
                totals["input"] += body_bytes(
                    messages=HI, model="mock:inter-token-ms=5", stream=True, **extra
                )

    await asyncio.gather(*(one_client(g) for g in gateways for _ in range(clients_per_gateway)))
    return totals


def test_no_output_limit_or_usage_a_client_or_upstream_names_can_break_the_store(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    entry = TenantEntry(requests=1000, tokens=TokenBudget(input=100000))  # output unlimited
    client.hset(MAP_KEY, "tenant-n", encode_entry(entry))
    client.incr(REV_KEY)
    gateway = gateway_factory(REDIS_URL=redis_server.url, **LOOSE)
    huge = post(gateway, "tenant-n", model="gpt-4o-mini", messages=HI, max_tokens=10**9, n=10**12)
    assert huge.status_code == 200
    assert post(gateway, "tenant-n", model="gpt-4o-mini", messages=HI, max_tokens=10**30).status_code == 200
    samples = scrape(gateway.url)
    assert value(samples, "quota_backend_errors_total") == 0  # Redis took every count as an integer
    assert settled(redis_server, "tenant-n", (2 * PROMPT_TOKENS, 2 * REPLY_WORDS)) == (2, 40)


def put_script(mock: ManagedProcess, name: str, spec: dict[str, Any]) -> str:
    """Register a scripted answer with the mock; the model name that replays it."""
    httpx.put(f"{mock.url}/_mock/scripts/{name}", content=orjson.dumps(spec)).raise_for_status()
    return f"mock:script={name}"


def test_anthropics_cached_prompt_tokens_are_charged_as_input(
    gateway_factory: GatewayFactory, mock: ManagedProcess, redis_server: RedisServer, tmp_path: Path
) -> None:
    usage = {"input_tokens": 3, "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 200}
    answer = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-gateway-test",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "usage": {**usage, "output_tokens": 2},
    }
    model = put_script(
        mock,
        "cached",
        {"status": 200, "content_type": "application/json", "writes": [orjson.dumps(answer).decode()]},
    )
    gateway = anthropic_gateway(
        gateway_factory, mock, tmp_path, DEFAULT_TOKEN_QUOTA="100000", REDIS_URL=redis_server.url
    )
    client = anthropic.Anthropic(base_url=gateway.url, api_key="tenant-o", max_retries=0)
    client.messages.create(model=model, max_tokens=10, messages=HI)
    assert settled(redis_server, "tenant-o", (1203, 2)) == (1203, 2)  # the prompt is the sum of the three


def test_a_client_that_leaves_before_a_non_stream_answer_is_charged_its_reservation(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    gateway = gateway_factory(DEFAULT_TOKEN_QUOTA="10000", REDIS_URL=redis_server.url, **LOOSE)
    request = chat_body(model="mock:latency-ms=2000", max_tokens=50)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gateway.url + CHAT, json=request, headers={"X-Api-Key": "tenant-p"}, timeout=0.5)
    # The upstream had the request and may bill all of it: what was reserved stays spent.
    expected = (len(orjson.dumps(request)), 50)
    assert settled(redis_server, "tenant-p", expected) == expected


def test_a_stream_that_fails_before_its_first_event_costs_nothing(
    gateway_factory: GatewayFactory, mock: ManagedProcess, redis_server: RedisServer
) -> None:
    model = put_script(
        mock,
        "cut",
        {"status": 200, "content_type": "text/event-stream", "writes": ['data: {"choices":[{"del']},
    )
    gateway = gateway_factory(DEFAULT_TOKEN_QUOTA="10000", REDIS_URL=redis_server.url, **LOOSE)
    response = post(gateway, "tenant-q", model=model, messages=HI, stream=True, max_tokens=50)
    assert "stream_truncated" in response.text
    time.sleep(0.5)
    assert ledger(redis_server, "tenant-q") == (0, 0)
    assert redis_server.client().get("quota:{tenant-q}") == b"0"  # and its request unit, as before


def test_a_client_that_leaves_after_the_usage_came_is_charged_the_usage(
    gateway_factory: GatewayFactory, mock: ManagedProcess, redis_server: RedisServer
) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    words = [{**chunk, "choices": [{"index": 0, "delta": {"content": f"w{i} "}}]} for i in range(5)]
    usage = {**chunk, "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3005}}
    writes = ["".join(f"data: {orjson.dumps(e).decode()}\n\n" for e in [*words, usage])]
    model = put_script(
        mock,
        "reasoned",
        {
            "status": 200,
            "content_type": "text/event-stream",
            "writes": [*writes, "data: [DONE]\n\n"],
            "write_delay_ms": 2000,
        },
    )
    gateway = gateway_factory(DEFAULT_TOKEN_QUOTA="100000", REDIS_URL=redis_server.url, **LOOSE)
    request = chat_body(model=model, stream=True, max_tokens=5000)
    with httpx.stream(
        "POST", gateway.url + CHAT, json=request, headers={"X-Api-Key": "tenant-r"}
    ) as response:
        for line in response.iter_lines():
            if "w4 " in line:
                break  # leaves before [DONE]; the usage (hidden reasoning included) had come
    assert settled(redis_server, "tenant-r", (4, 3005)) == (4, 3005)


def test_with_stream_usage_off_a_stream_is_charged_what_it_delivered(
    gateway_factory: GatewayFactory, mock: ManagedProcess, redis_server: RedisServer
) -> None:
    gateway = gateway_factory(
        DEFAULT_TOKEN_QUOTA="10000", STREAM_USAGE="off", REDIS_URL=redis_server.url, **LOOSE
    )
    request = chat_body(stream=True, max_tokens=50)
    assert post(gateway, "tenant-s", **request).status_code == 200
    sent = orjson.loads(httpx.get(mock.url + "/_mock/last-request").json()["body"])
    assert "stream_options" not in sent  # not asked for, as configured
    expected = (len(orjson.dumps(request)), REPLY_WORDS)
    assert settled(redis_server, "tenant-s", expected) == expected


def test_a_budget_smaller_than_the_cap_still_serves_requests_naming_no_limit(
    gateway_factory: GatewayFactory, mock: ManagedProcess, redis_server: RedisServer
) -> None:
    gateway = gateway_factory(DEFAULT_TOKEN_QUOTA="2000", REDIS_URL=redis_server.url, **LOOSE)
    request = chat_body()
    answer = post(gateway, "tenant-t", **request)
    assert answer.status_code == 200  # the 4096 cap would never fit in 2000
    written = orjson.loads(httpx.get(mock.url + "/_mock/last-request").json()["body"])[
        "max_completion_tokens"
    ]
    assert written == 2000 - len(orjson.dumps(request))


def test_a_refusal_while_tokens_are_held_in_flight_tells_the_sdk_to_retry_soon(
    gateway_factory: GatewayFactory, redis_server: RedisServer
) -> None:
    gateway = gateway_factory(DEFAULT_TOKEN_QUOTA="1000", REDIS_URL=redis_server.url, **LOOSE)
    slow = threading.Thread(
        target=post,
        args=(gateway, "tenant-u"),
        kwargs={"model": "mock:latency-ms=1500", "messages": HI, "max_tokens": 600},
    )
    slow.start()
    time.sleep(0.5)  # the first holds about 700 of the 1000
    refused = post(gateway, "tenant-u", model="gpt-4o-mini", messages=HI, max_tokens=600)
    assert refused.status_code == 429
    assert (refused.headers["x-should-retry"], refused.headers["retry-after"]) == ("true", "1")
    # The SDK waits as told and gets in once the first has settled (for 21 tokens).
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="tenant-u", max_retries=2, timeout=30)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=600).choices
    slow.join()
