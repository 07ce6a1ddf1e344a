"""The circuit breaker (pure): closed -> open -> half_open -> closed, on a clock the test drives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.core.breaker import BreakerEvent, BreakerPolicy, CircuitBreaker

POLICY = BreakerPolicy(
    failures=3, failure_ratio=0.5, window=10.0, min_requests=6, min_tenants=1, cooldown=5.0, probes=2
)


def breaker(policy: BreakerPolicy = POLICY) -> tuple[CircuitBreaker, list[BreakerEvent]]:
    events: list[BreakerEvent] = []
    return CircuitBreaker(policy, events.append), events


def fail(b: CircuitBreaker, at: float, tenant: str | None = "t", retry_after: float | None = None) -> None:
    b.record(at, b.acquire(at), False, tenant=tenant, retry_after=retry_after)


def succeed(b: CircuitBreaker, at: float) -> None:
    b.record(at, b.acquire(at), True)


def test_consecutive_failures_open_it_and_a_success_resets_the_count() -> None:
    b, events = breaker()
    fail(b, 0.0), fail(b, 0.1), succeed(b, 0.2), fail(b, 0.3), fail(b, 0.4)
    assert events == [] and b.state == "closed"
    fail(b, 0.5)
    assert events == ["open"] and not b.available(0.6)
    assert b.retry_after(1.0) == pytest.approx(4.5)


def test_the_failure_ratio_opens_it_only_with_enough_requests_in_the_window() -> None:
    b, events = breaker()
    for at, ok in enumerate([True, False, True, False, True]):  # 2 of 5 failed, never 3 in a row
        (succeed if ok else fail)(b, float(at))
    assert events == []
    fail(b, 5.0)  # 3 of 6: the ratio, with the minimum reached
    assert events == ["open"]


def test_failures_older_than_the_window_do_not_count() -> None:
    b, _ = breaker()
    for at in range(5):
        (succeed if at % 2 == 0 else fail)(b, float(at))
    # 30 s later the window holds only what follows: 1 failure of 2 is under the minimum.
    succeed(b, 35.0), fail(b, 35.5)
    assert b.state == "closed"


@pytest.mark.parametrize(
    ("tenants", "opens"),
    [
        (["a", "a", "a", "a", "a"], False),  # one tenant alone never opens it
        (["a", "a", "a", "a", "b"], True),
        (["a", None, "a"], True),  # a failure no request causes needs no company
        ([None, None, None], True),
    ],
)
def test_failures_a_request_may_cause_open_it_only_from_enough_tenants(
    tenants: list[str | None], opens: bool
) -> None:
    b, events = breaker(BreakerPolicy(failures=3, min_requests=1000, min_tenants=2))
    for at, tenant in enumerate(tenants):
        fail(b, float(at), tenant)
    assert (events == ["open"]) is opens


def test_the_ratio_rule_counts_tenants_too() -> None:
    b, events = breaker(BreakerPolicy(failures=1000, failure_ratio=0.5, min_requests=4, min_tenants=2))
    for at in range(10):
        fail(b, float(at) / 10, "a")
    assert events == []
    fail(b, 1.0, "b")
    assert events == ["open"]


def test_after_the_cooldown_probes_are_let_through_and_a_success_closes_it() -> None:
    b, events = breaker()
    for at in range(3):
        fail(b, float(at))
    assert not b.available(6.9)
    assert b.available(7.0)
    first = b.acquire(7.0)
    second = b.acquire(7.0)  # the second probe slot
    assert events == ["open", "half_open"] and first == second != 0
    assert not b.available(7.0)  # both probes out
    b.record(7.5, first, True)
    assert events[-1] == "close" and b.available(7.5)
    b.record(7.6, second, False, tenant=None)  # the other probe of a round already decided
    assert b.state == "closed"


def test_a_failed_probe_opens_it_again_for_a_cooldown() -> None:
    b, events = breaker()
    for at in range(3):
        fail(b, float(at))
    b.record(8.5, b.acquire(8.0), False, tenant="t")
    assert events == ["open", "half_open", "open"] and b.retry_after(8.5) == pytest.approx(5.0)


def test_a_probe_whose_client_left_frees_its_slot() -> None:
    b, _ = breaker(BreakerPolicy(failures=1, min_tenants=1, cooldown=1.0, probes=1))
    fail(b, 0.0)
    ticket = b.acquire(2.0)
    assert not b.available(2.0)
    b.release(ticket)
    assert b.available(2.0) and b.state == "half_open"


def test_an_attempt_from_before_cannot_free_a_probe_slot_nor_decide_the_round() -> None:
    b, events = breaker(BreakerPolicy(failures=1, min_tenants=1, cooldown=1.0, probes=1))
    old = b.acquire(0.0)  # started while closed
    fail(b, 0.1)  # another attempt opens it
    probe = b.acquire(2.0)
    b.release(old)
    assert not b.available(2.0)  # the probe still holds the only slot
    b.record(2.1, old, True)
    assert b.state == "half_open"  # a stale success does not close it
    b.record(2.2, probe, True)
    assert events == ["open", "half_open", "close"]


def test_a_probe_of_an_earlier_round_has_no_say_in_the_next() -> None:
    b, events = breaker(BreakerPolicy(failures=1, min_tenants=1, cooldown=1.0, probes=2))
    fail(b, 0.0)
    slow, quick = b.acquire(2.0), b.acquire(2.0)
    b.record(2.1, quick, False)  # reopens
    fresh = b.acquire(4.0)  # the next round
    b.record(4.1, slow, True)  # the slow probe of the first round answers now
    assert b.state == "half_open" and b.available(4.1)  # no say, and no slot freed: one of two taken
    b.record(4.2, fresh, True)
    assert events == ["open", "half_open", "open", "half_open", "close"]


@pytest.mark.parametrize(
    ("retry_after", "open_for"),
    [(None, 5.0), (2.0, 5.0), (60.0, 60.0), (10_000.0, 300.0)],
)
def test_the_upstreams_retry_after_lengthens_the_cooldown_up_to_the_maximum(
    retry_after: float | None, open_for: float
) -> None:
    b, _ = breaker(BreakerPolicy(failures=1, min_tenants=1, cooldown=5.0, max_cooldown=300.0))
    fail(b, 100.0, retry_after=retry_after)
    assert b.retry_after(100.0) == pytest.approx(open_for)


def test_a_late_verdict_of_an_attempt_started_before_it_opened_changes_nothing() -> None:
    b, _ = breaker(BreakerPolicy(failures=1, min_tenants=1))
    ticket = b.acquire(0.0)
    fail(b, 0.0)
    b.record(0.1, ticket, True)
    assert b.state == "open"


@given(
    st.lists(
        st.tuples(
            st.floats(0, 5),
            st.sampled_from(["acquire", "record", "release"]),
            st.booleans(),
            st.integers(0, 3),
        ),
        max_size=200,
    )
)
def test_any_sequence_keeps_the_invariants(steps: list[tuple[float, str, bool, int]]) -> None:
    """Probes in flight never exceed the policy's; a closed breaker always lets attempts through;
    an open one never before its time; every probe's slot comes back when its attempt ends."""
    b, _ = breaker()
    now, held = 0.0, []
    for delta, action, ok, pick in steps:
        now += delta
        if action == "acquire" and b.available(now):
            held.append(b.acquire(now))
        elif held:
            ticket = held.pop(pick % len(held))
            if action == "record":
                b.record(now, ticket, ok, tenant=None)
            else:
                b.release(ticket)
        assert b._probing <= POLICY.probes
        assert b.state != "closed" or b.available(now)
        if b.state == "open" and now < b.open_until:
            assert not b.available(now)
    for ticket in held:
        b.release(ticket)
    assert b._probing == 0


def test_a_run_of_failures_is_consecutive_within_the_window() -> None:
    b, events = breaker(BreakerPolicy(failures=3, window=10.0, min_requests=1000, min_tenants=1))
    fail(b, 0.0), fail(b, 1.0)
    fail(b, 20.0)  # the run had gone quiet for longer than the window: it starts again
    assert events == []
    fail(b, 21.0), fail(b, 22.0)
    assert events == ["open"]


def test_state_at_says_half_open_once_the_cooldown_is_over() -> None:
    b, _ = breaker()
    for at in range(3):
        fail(b, float(at))
    assert (b.state_at(3.0), b.state_at(7.0), b.state) == ("open", "half_open", "open")
