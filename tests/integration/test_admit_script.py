"""The admission and settlement Lua scripts against a real redis-server: atomic counting and expiry,
GCRA rate, token reservations, and refunds and settlements that only ever go back to the window that
counted."""

from __future__ import annotations

import time

import pytest

from llm_gateway.core.quota import ADMIT_SCRIPT, SETTLE_SCRIPT
from tests.support import RedisServer


def admit(
    server: RedisServer,
    tenant: str,
    key: str,
    *,
    quota: int,
    window_ms: int,
    rps: float,
    burst: int,
    tokens: tuple[int, int, int, int, int, int] | None = None,
) -> list[int]:
    """The script's reply; ``tokens``: limits total, input, output (-1: none), window ms, reserved
    input, output."""
    script = server.client().register_script(ADMIT_SCRIPT)
    keys = [f"quota:{tenant}", f"ratelimit:{key}"]
    args: list[float] = [quota, window_ms, 1000 / rps, burst]
    if tokens is not None:
        keys.append(f"tokens:{tenant}")
        args.extend(tokens)
    return [int(value) for value in script(keys=keys, args=args)]


def test_first_request_sets_count_and_expiry_atomically(redis_server: RedisServer) -> None:
    outcome, used, left, retry, window_end, *tokens = admit(
        redis_server, "t", "t", quota=5, window_ms=60_000, rps=100, burst=100
    )
    assert tokens == [0, 0, 0, 0, 0]  # no budget: the token key is not touched
    assert not redis_server.client().exists("tokens:t")
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


def settle_many(server: RedisServer, *settlements: tuple[str, int, int, int, int, int]) -> list[int]:
    """Settle several at once: each (tenant, quota window end or 0, token window end or 0, input
    delta, output delta, tokens its reservation held); the units given back, in order."""
    keys = [key for tenant, *_ in settlements for key in (f"quota:{tenant}", f"tokens:{tenant}")]
    args = [value for _, *values in settlements for value in values]
    return [int(given) for given in server.client().register_script(SETTLE_SCRIPT)(keys=keys, args=args)]


def refund(server: RedisServer, tenant: str, window_end: int) -> int:
    (given,) = settle_many(server, (tenant, window_end, 0, 0, 0, 0))
    return given


def settle(
    server: RedisServer, tenant: str, window_end: int, delta_in: int, delta_out: int, held: int = 0
) -> None:
    """Correct ``tenant``'s tokens by the deltas in the token window ending at ``window_end``, and
    release the ``held`` tokens its reservation held."""
    assert settle_many(server, (tenant, 0, window_end, delta_in, delta_out, held)) == [0]  # no unit back


def held(server: RedisServer, tenant: str) -> int:
    return int(server.client().hget(f"tokens:{tenant}", "held") or 0)


def tokens_of(server: RedisServer, tenant: str) -> tuple[int, int]:
    counts = server.client().hmget(f"tokens:{tenant}", ["input", "output"])
    return int(counts[0] or 0), int(counts[1] or 0)


BUDGET = (1000, -1, -1, 60_000)  # 1000 tokens per minute, no split


@pytest.mark.parametrize(
    ("limits", "reservations", "outcomes", "used"),
    [
        (BUDGET, [(300, 200), (300, 201)], [0, 3], (300, 200)),  # the second does not fit: untouched
        (BUDGET, [(300, 200), (300, 200)], [0, 0], (600, 400)),  # exactly the budget
        (BUDGET, [(600, 400), (0, 1)], [0, 3], (600, 400)),  # exactly full, then not one more
        ((-1, 500, 100, 60_000), [(400, 50), (50, 50), (50, 1)], [0, 0, 3], (450, 100)),  # split limits
        ((-1, 500, 100, 60_000), [(501, 0)], [3], (0, 0)),  # never fits
        ((0, -1, -1, 60_000), [(1, 0)], [3], (0, 0)),  # a budget of 0 blocks
    ],
)
def test_a_reservation_is_taken_whole_or_not_at_all(
    redis_server: RedisServer,
    limits: tuple[int, int, int, int],
    reservations: list[tuple[int, int]],
    outcomes: list[int],
    used: tuple[int, int],
) -> None:
    replies = [
        admit(redis_server, "b", "b", quota=100, window_ms=60_000, rps=100, burst=100, tokens=(*limits, *r))
        for r in reservations
    ]
    assert [reply[0] for reply in replies] == outcomes
    assert tokens_of(redis_server, "b") == used
    assert int(redis_server.client().get("quota:b") or 0) == outcomes.count(0)  # refused: no unit
    refused = [reply for reply in replies if reply[0] == 3]
    for reply in refused:
        assert 0 < reply[3] <= 60_000 and reply[3] == reply[7]  # retry when the token window ends
    if tokens_of(redis_server, "b") != (0, 0):
        assert 59_000 < redis_server.client().pttl("tokens:b") <= 60_000


def test_a_settlement_corrects_its_own_window_only_and_never_below_zero(redis_server: RedisServer) -> None:
    client = redis_server.client()
    budget = (*BUDGET[:3], 300)  # a 300 ms token window
    first = admit(
        redis_server, "s", "s", quota=100, window_ms=60_000, rps=100, burst=100, tokens=(*budget, 100, 50)
    )
    admit(redis_server, "s", "s", quota=100, window_ms=60_000, rps=100, burst=100, tokens=(*budget, 100, 50))
    assert tokens_of(redis_server, "s") == (200, 100)
    settle(redis_server, "s", first[8], -90, -30)  # it cost 10 in, 20 out
    assert tokens_of(redis_server, "s") == (110, 70)
    settle(redis_server, "s", first[8], -500, +5)  # an oversized return stops at 0
    assert tokens_of(redis_server, "s") == (0, 75)
    time.sleep(0.4)  # the window ends; a new one opens
    admit(redis_server, "s", "s", quota=100, window_ms=60_000, rps=100, burst=100, tokens=(*budget, 7, 7))
    settle(redis_server, "s", first[8], -7, -7)
    assert tokens_of(redis_server, "s") == (7, 7)
    assert client.get("quota:s") == b"3"  # settling never touched the request count


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


def test_a_token_counter_left_without_expiry_gets_one(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.hset("tokens:legacy", mapping={"input": 5, "output": 5})
    admit(
        redis_server,
        "legacy",
        "legacy",
        quota=5,
        window_ms=10_000,
        rps=100,
        burst=100,
        tokens=(*BUDGET, 1, 1),
    )
    assert tokens_of(redis_server, "legacy") == (6, 6)
    assert 0 < client.pttl("tokens:legacy") <= 60_000


def test_settlements_sent_together_each_apply_to_their_own_tenant_and_window(
    redis_server: RedisServer,
) -> None:
    a = admit(redis_server, "x", "x", quota=5, window_ms=60_000, rps=100, burst=100, tokens=(*BUDGET, 50, 50))
    b = admit(redis_server, "y", "y", quota=5, window_ms=60_000, rps=100, burst=100, tokens=(*BUDGET, 30, 30))
    given = settle_many(
        redis_server,
        ("x", a[4], a[8], -50, -50, 100),  # failed before the client got anything: all of it back
        ("y", 0, b[8], -20, -10, 60),  # answered: settled to 10 in, 20 out
        ("z", 12345, 12345, -1, -1, 2),  # no such windows: nothing happens
    )
    assert given == [1, 0, 0]
    assert (tokens_of(redis_server, "x"), tokens_of(redis_server, "y")) == ((0, 0), (10, 20))
    assert held(redis_server, "x") == held(redis_server, "y") == 0  # nothing in flight any more
    assert redis_server.client().get("quota:x") == b"0"
    assert redis_server.client().get("quota:y") == b"1"
    assert not redis_server.client().exists("quota:z", "tokens:z")


def test_tokens_in_flight_are_held_and_a_refusal_says_how_many(redis_server: RedisServer) -> None:
    first = admit(
        redis_server, "h", "h", quota=100, window_ms=60_000, rps=100, burst=100, tokens=(*BUDGET, 300, 400)
    )
    assert first[0] == 0 and held(redis_server, "h") == 700
    refused = admit(
        redis_server, "h", "h", quota=100, window_ms=60_000, rps=100, burst=100, tokens=(*BUDGET, 300, 400)
    )
    assert (refused[0], refused[9]) == (3, 700)  # refused while 700 are held by the first
    settle(redis_server, "h", first[8], -290, -380, held=700)  # it cost 10 in, 20 out
    assert held(redis_server, "h") == 0
    again = admit(
        redis_server, "h", "h", quota=100, window_ms=60_000, rps=100, burst=100, tokens=(*BUDGET, 300, 400)
    )
    assert again[0] == 0  # the room came back


def test_every_outcome_replies_in_one_shape(redis_server: RedisServer) -> None:
    replies = [
        admit(
            redis_server, "o", "o", quota=1, window_ms=60_000, rps=1, burst=1, tokens=(*BUDGET, 10, 10)
        ),  # 0
        admit(redis_server, "o", "o", quota=1, window_ms=60_000, rps=1, burst=1),  # 1: rate limited
        admit(redis_server, "o2", "o2", quota=0, window_ms=60_000, rps=100, burst=100),  # 2: quota
        admit(
            redis_server, "o3", "o3", quota=5, window_ms=60_000, rps=100, burst=100, tokens=(*BUDGET, 999, 9)
        ),  # 3
    ]
    assert [reply[0] for reply in replies] == [0, 1, 2, 3]
    assert {len(reply) for reply in replies} == {10}  # what RedisStore.admit unpacks
