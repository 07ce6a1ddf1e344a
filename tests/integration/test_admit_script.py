"""The admission and refund Lua scripts against a real redis-server: atomic counting and expiry, GCRA
rate, and refunds that only ever go back to the window that counted."""

from __future__ import annotations

import time

from llm_gateway.core.quota import ADMIT_SCRIPT, REFUND_SCRIPT
from tests.support import RedisServer


def admit(
    server: RedisServer, tenant: str, key: str, *, quota: int, window_ms: int, rps: float, burst: int
) -> list[int]:
    script = server.client().register_script(ADMIT_SCRIPT)
    result = script(keys=[f"quota:{tenant}", f"ratelimit:{key}"], args=[quota, window_ms, 1000 / rps, burst])
    return [int(value) for value in result]


def test_first_request_sets_count_and_expiry_atomically(redis_server: RedisServer) -> None:
    outcome, used, left, retry, window_end = admit(
        redis_server, "t", "t", quota=5, window_ms=60_000, rps=100, burst=100
    )
    assert (outcome, used, left, retry) == (0, 1, 60_000, 0)
    seconds, micros = redis_server.client().time()
    assert 0 < window_end - (seconds * 1000 + micros // 1000) <= 60_000  # on Redis's clock
    client = redis_server.client()
    assert client.get("quota:t") == b"1"
    assert 59_000 < client.pttl("quota:t") <= 60_000


def test_a_counter_left_without_expiry_gets_one(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("quota:legacy", 3)  # as an older writer that died between INCR and EXPIRE would leave it
    assert client.ttl("quota:legacy") == -1
    admit(redis_server, "legacy", "legacy", quota=5, window_ms=10_000, rps=100, burst=100)
    assert client.get("quota:legacy") == b"4"
    assert 0 < client.pttl("quota:legacy") <= 10_000


def test_over_quota_is_refused_and_not_counted(redis_server: RedisServer) -> None:
    results = [
        admit(redis_server, "q", "q", quota=2, window_ms=60_000, rps=100, burst=100)[0] for _ in range(4)
    ]
    assert results == [0, 0, 2, 2]
    assert redis_server.client().get("quota:q") == b"2"


def test_rate_limit_allows_the_burst_then_refuses_without_touching_quota(redis_server: RedisServer) -> None:
    outcomes = [admit(redis_server, "r", "r", quota=100, window_ms=60_000, rps=1, burst=3) for _ in range(5)]
    assert [o[0] for o in outcomes] == [0, 0, 0, 1, 1]
    assert 0 < outcomes[-1][3] <= 1000  # retry after at most one emission interval
    assert redis_server.client().get("quota:r") == b"3"
    assert redis_server.client().pttl("ratelimit:r") > 0  # GCRA state expires too


def test_very_high_rates_still_store_a_valid_expiry(redis_server: RedisServer) -> None:
    # At 1e9 rps the emission interval vanishes next to a millisecond timestamp.
    for _ in range(3):
        outcome = admit(redis_server, "fast", "fast", quota=10**9, window_ms=60_000, rps=1e9, burst=10**9)
        assert outcome[0] == 0


def refund(server: RedisServer, tenant: str, window_end: int) -> int:
    return int(server.client().register_script(REFUND_SCRIPT)(keys=[f"quota:{tenant}"], args=[window_end]))


def test_a_refund_gives_one_unit_back_to_its_window_and_keeps_the_expiry(redis_server: RedisServer) -> None:
    client = redis_server.client()
    first = admit(redis_server, "f", "f", quota=5, window_ms=60_000, rps=100, burst=100)
    second = admit(redis_server, "f", "f", quota=5, window_ms=60_000, rps=100, burst=100)
    ttl_before = client.pttl("quota:f")
    assert refund(redis_server, "f", second[4]) == 1
    assert client.get("quota:f") == b"1"
    assert ttl_before - 1000 < client.pttl("quota:f") <= ttl_before  # DECR leaves the expiry alone
    assert refund(redis_server, "f", first[4]) == 1
    assert refund(redis_server, "f", first[4]) == 0  # never below zero
    assert client.get("quota:f") == b"0"


def test_a_refund_never_touches_a_later_window(redis_server: RedisServer) -> None:
    client = redis_server.client()
    old = admit(redis_server, "w", "w", quota=5, window_ms=200, rps=100, burst=100)
    time.sleep(0.3)  # the window ends; the next request opens a new one
    admit(redis_server, "w", "w", quota=5, window_ms=200, rps=100, burst=100)
    assert refund(redis_server, "w", old[4]) == 0
    assert client.get("quota:w") == b"1"
    time.sleep(0.3)
    assert refund(redis_server, "w", old[4]) == 0  # no window at all: nothing to give back
    assert client.get("quota:w") is None
