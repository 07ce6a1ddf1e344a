"""The circuit breaker (pure): closed -> open -> half_open -> closed, on a clock the test drives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.core.breaker import BreakerPolicy, CircuitBreaker

POLICY = BreakerPolicy(failures=3, failure_ratio=0.5, window=10.0, min_requests=6, cooldown=5.0, probes=2)


def test_consecutive_failures_open_it_and_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(POLICY)
    assert [breaker.record(0.0, False), breaker.record(0.1, False), breaker.record(0.2, True)] == [None] * 3
    assert breaker.record(0.3, False) is None and breaker.record(0.4, False) is None
    assert breaker.record(0.5, False) == "open"
    assert breaker.state == "open" and not breaker.available(0.6)
    assert breaker.retry_after(1.0) == pytest.approx(4.5)


def test_the_failure_ratio_opens_it_only_with_enough_requests_in_the_window() -> None:
    breaker = CircuitBreaker(POLICY)
    outcomes = [True, False, True, False, True]  # 2 of 5 failed, never 3 in a row
    for at, ok in enumerate(outcomes):
        assert breaker.record(float(at), ok) is None
    assert breaker.record(5.0, False) == "open"  # 3 of 6: the ratio, with the minimum reached


def test_failures_older_than_the_window_do_not_count() -> None:
    breaker = CircuitBreaker(POLICY)
    for at in range(5):
        breaker.record(float(at), at % 2 == 0)
    # 30 s later the window holds only what follows: 1 failure of 2 is under the minimum.
    assert breaker.record(35.0, True) is None and breaker.record(35.5, False) is None
    assert breaker.state == "closed"


def test_after_the_cooldown_probes_are_let_through_and_a_success_closes_it() -> None:
    breaker = CircuitBreaker(POLICY)
    for at in range(3):
        breaker.record(float(at), False)
    assert not breaker.available(6.9)
    assert breaker.available(7.0)
    assert breaker.acquire(7.0) == "half_open"
    assert breaker.acquire(7.0) is None  # the second probe slot
    assert not breaker.available(7.0)  # both probes out
    assert breaker.record(7.5, True) == "close"
    assert breaker.state == "closed" and breaker.available(7.5)


def test_a_failed_probe_opens_it_again_for_a_cooldown() -> None:
    breaker = CircuitBreaker(POLICY)
    for at in range(3):
        breaker.record(float(at), False)
    breaker.acquire(8.0)
    assert breaker.record(8.5, False) == "open"
    assert breaker.retry_after(8.5) == pytest.approx(5.0)


def test_a_probe_whose_client_left_frees_its_slot() -> None:
    breaker = CircuitBreaker(BreakerPolicy(failures=1, cooldown=1.0, probes=1))
    breaker.record(0.0, False)
    breaker.acquire(2.0)
    assert not breaker.available(2.0)
    breaker.release()
    assert breaker.available(2.0) and breaker.state == "half_open"


@pytest.mark.parametrize(
    ("retry_after", "open_for"),
    [(None, 5.0), (2.0, 5.0), (60.0, 60.0), (10_000.0, 300.0)],
)
def test_the_upstreams_retry_after_lengthens_the_cooldown_up_to_the_maximum(
    retry_after: float | None, open_for: float
) -> None:
    breaker = CircuitBreaker(BreakerPolicy(failures=1, cooldown=5.0, max_cooldown=300.0))
    assert breaker.record(100.0, False, retry_after) == "open"
    assert breaker.retry_after(100.0) == pytest.approx(open_for)


def test_a_late_verdict_of_an_attempt_started_before_it_opened_changes_nothing() -> None:
    breaker = CircuitBreaker(BreakerPolicy(failures=1))
    breaker.record(0.0, False)
    assert breaker.record(0.1, True) is None and breaker.state == "open"


@given(st.lists(st.tuples(st.floats(0, 5), st.booleans(), st.booleans()), max_size=200))
def test_any_sequence_keeps_the_invariants(steps: list[tuple[float, bool, bool]]) -> None:
    """Probes in flight never exceed the policy's; a closed breaker always lets attempts through;
    an open one never before its time."""
    breaker, now = CircuitBreaker(POLICY), 0.0
    for delta, acquire, ok in steps:
        now += delta
        if acquire and breaker.available(now):
            breaker.acquire(now)
            breaker.record(now, ok)
        elif not acquire:
            breaker.record(now, ok)
        assert breaker._probing <= POLICY.probes
        assert breaker.state != "closed" or breaker.available(now)
        if breaker.state == "open" and now < breaker.open_until:
            assert not breaker.available(now)
