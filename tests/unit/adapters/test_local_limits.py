"""The in-process store, with the real aiolimiter and an injected clock for windows."""

from __future__ import annotations

import asyncio
import tracemalloc

from llm_gateway.adapters.local_limits import LocalLimits
from llm_gateway.core.quota import Decision, Limits, Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_quota_window_counts_and_resets() -> None:
    clock = Clock()
    local = LocalLimits(clock=clock)
    limits = Limits(quota=2, window_secs=10, rps=1000, burst=1000)

    async def scenario() -> list[Outcome]:
        outcomes = [(await local.check("t", "t", limits)).outcome for _ in range(3)]
        clock.now += 10
        outcomes.append((await local.check("t", "t", limits)).outcome)
        return outcomes

    assert run(scenario()) == [Outcome.ALLOWED, Outcome.ALLOWED, Outcome.QUOTA_EXCEEDED, Outcome.ALLOWED]


def test_burst_then_refuse_without_waiting_and_refusals_cost_no_quota() -> None:
    local = LocalLimits(clock=Clock())
    limits = Limits(quota=100, window_secs=60, rps=1, burst=3)

    async def scenario() -> tuple[list[Outcome], Decision, Decision]:
        decisions = [await local.check("t", "k", limits) for _ in range(5)]
        return [d.outcome for d in decisions], decisions[-1], await local.check("t", "other key", limits)

    outcomes, refused, next_admitted = run(scenario())
    assert outcomes == [Outcome.ALLOWED] * 3 + [Outcome.RATE_LIMITED] * 2
    # The refusal describes the rate limit (its burst, nothing left, the wait), not the quota.
    assert (refused.limit, refused.remaining, refused.retry_after_secs) == (3, 0, 1.0)
    assert next_admitted.remaining == 96  # the two refusals cost no quota


def test_a_refund_gives_back_one_unit_of_the_same_window_only() -> None:
    clock = Clock()
    local = LocalLimits(clock=clock)
    limits = Limits(quota=2, window_secs=60, rps=1000, burst=1000)

    async def scenario() -> list[object]:
        first = await local.check("t", "k", limits)
        second = await local.check("t", "k", limits)
        refunded = local.settle("t", second, refund=True, charged=None)
        third = await local.check("t", "k", limits)  # the unit given back is usable
        clock.now += 61
        fourth = await local.check("t", "k", limits)  # a new window
        late = local.settle(
            "t", first, refund=True, charged=None
        )  # the first window's unit: not from this window
        return [
            refunded,
            third.outcome,
            fourth.remaining,
            late,
            (await local.check("t", "k", limits)).remaining,  # 0: the late refund took nothing
        ]

    assert run(scenario()) == [True, Outcome.ALLOWED, 1, False, 0]


def test_memory_stays_bounded_over_100k_distinct_keys() -> None:
    clock = Clock()
    local = LocalLimits(clock=clock)
    # Buckets drain in 1 ms and windows end after 1 s of the injected clock: idle state is dropped.
    limits = Limits(quota=5, window_secs=1, rps=1000, burst=1)

    async def scenario() -> int:
        tracemalloc.start()
        peak_entries = 0
        for i in range(100_000):
            clock.now += 0.0001
            await local.check(f"tenant-{i}", f"key-{i}", limits)
            if i % 1000 == 0:
                await asyncio.sleep(0.002)  # let real time pass for aiolimiter's buckets
                peak_entries = max(peak_entries, len(local))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 20 * 1024 * 1024, peak
        return peak_entries

    peak_entries = run(scenario())
    assert peak_entries < 25_000, peak_entries
    assert len(local) < 25_000


def test_hard_cap_bounds_entries_even_when_nothing_is_idle() -> None:
    local = LocalLimits(max_entries=1000, clock=Clock())
    limits = Limits(quota=5, window_secs=3600, rps=0.001, burst=1)

    async def scenario() -> None:
        for i in range(10_000):
            await local.check(f"t{i}", f"k{i}", limits)

    run(scenario())
    assert len(local) <= 2 * 1000 + 2
