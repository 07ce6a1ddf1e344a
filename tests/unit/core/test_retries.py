"""Retry waits, the upstream's Retry-After, and the retry budget (pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.core.retries import RetryBudget, RetryPolicy, upstream_retry_after

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the SDKs read -ms first
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)}, 30.0),
        ({"retry-after": format_datetime(datetime.fromtimestamp(NOW - 30, UTC), usegmt=True)}, 0.0),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after-ms": "-1"}, None),
        ({"retry-after": "tomorrow"}, None),
        ({"retry-after": "99999999"}, 3600.0),  # believed up to an hour
        ({"retry-after": ""}, None),
    ],
)
def test_upstream_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert upstream_retry_after(headers, NOW) == (pytest.approx(seconds) if seconds is not None else None)


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_header_text_gives_none_or_a_bounded_wait(seconds: str, millis: str) -> None:
    value = upstream_retry_after({"retry-after": seconds, "retry-after-ms": millis}, NOW)
    assert value is None or 0 <= value <= 3600


def test_backoff_is_full_jitter_doubling_up_to_the_maximum() -> None:
    policy = RetryPolicy(backoff=0.2, max_backoff=1.0)
    rng = random.Random(7)
    for retry, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (10, 1.0)]:
        waits = [policy.wait(retry, None, rng) for _ in range(500)]
        assert min(waits) >= 0 and max(waits) <= ceiling
        assert max(waits) > ceiling * 0.9  # the whole range is used


def test_the_upstreams_wait_wins_when_longer() -> None:
    policy = RetryPolicy(backoff=0.2, max_backoff=1.0)
    assert policy.wait(1, 3.0, random.Random(1)) == 3.0


def test_the_budget_allows_its_reserve_then_a_ratio_of_requests() -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=0.5, window=10.0)  # reserve: 5 retries
    assert sum(budget.try_retry(1.0) for _ in range(20)) == 5
    for _ in range(100):
        budget.request(2.0)
    assert sum(budget.try_retry(2.0) for _ in range(50)) == 20  # 0.2 * 100
    # A window later, everything has expired: the reserve again.
    assert sum(budget.try_retry(13.0) for _ in range(20)) == 5


def test_a_zero_budget_allows_no_retry() -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.0)
    budget.request(0.0)
    assert not budget.try_retry(0.0)


def test_the_backoff_of_a_late_retry_stays_finite() -> None:
    """2 ** 2000 overflows a float: the doubling stops long before that."""
    policy = RetryPolicy(backoff=0.2, max_backoff=5.0)
    assert 0 <= policy.wait(2000, None, random.Random(3)) <= 5.0
