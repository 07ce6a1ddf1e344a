"""In-process enforcement: the embedded store without Redis, and the fallback when Redis is down.

Rate limits are aiolimiter leaky buckets (``BURST`` at once, ``RPS`` sustained) answered without
waiting; quotas and token budgets are fixed windows. All live in insertion-ordered dicts kept in
last-use order, so idle entries are found at the front and evicted a few per call: an entry whose
bucket has drained or whose window has ended carries no state a fresh one would not, so memory
follows the number of keys active recently, not the number ever seen. ``max_entries`` bounds it outright.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiolimiter import AsyncLimiter

from llm_gateway.core.quota import Decision, Limits, Outcome, TokenState, rate_limited
from llm_gateway.core.token_budget import Reservation, TokenLimits

__all__ = ["LocalLimits"]

_SWEEP_PER_CALL = 2


class _Bucket:
    __slots__ = ("burst", "limiter", "rps")

    def __init__(self, rps: float, burst: int) -> None:
        self.rps = rps
        self.burst = burst
        self.limiter = AsyncLimiter(max_rate=burst, time_period=burst / rps)

    def idle(self) -> bool:
        return self.limiter.has_capacity(self.burst)


class _Window:
    __slots__ = ("ends_at", "held", "input", "output", "used")

    def __init__(self, ends_at: float) -> None:
        self.used = 0  # requests, in a quota window; tokens are counted in their own windows
        self.input = 0
        self.output = 0
        self.held = 0  # tokens reserved by requests not settled yet
        self.ends_at = ends_at


class LocalLimits:
    """Per-process limits. ``clock`` is monotonic seconds (injectable for tests)."""

    def __init__(self, *, max_entries: int = 200_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._windows: dict[str, _Window] = {}
        self._token_windows: dict[str, _Window] = {}
        self._max_entries = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._buckets) + len(self._windows) + len(self._token_windows)

    async def check(
        self,
        tenant: str,
        rate_key: str,
        limits: Limits,
        tokens: tuple[TokenLimits, Reservation] | None = None,
    ) -> Decision:
        """Admit or refuse one request of ``tenant`` under ``limits`` (and with ``tokens``, its token
        budget and reservation), counting it when admitted (the checks in the order and with the
        outcomes of :data:`~llm_gateway.core.quota.ADMIT_SCRIPT`)."""
        now = self._clock()
        window = _current(self._windows, tenant, now, limits.window_secs, self._max_entries)
        reset = window.ends_at - now
        bucket = self._bucket(rate_key, limits)
        if not bucket.limiter.has_capacity():
            return rate_limited(limits, 1 / bucket.rps)
        if window.used >= limits.quota:
            return Decision(Outcome.QUOTA_EXCEEDED, limits.quota, 0, reset, retry_after_secs=reset)
        state = None
        if tokens is not None:
            budget, reserved = tokens
            spent = _current(self._token_windows, tenant, now, budget.window_secs, self._max_entries)
            tokens_reset = spent.ends_at - now
            if not budget.admits(spent.input, spent.output, reserved):
                state = TokenState(budget, reserved, spent.input, spent.output, tokens_reset, held=spent.held)
                return Decision(
                    Outcome.TOKENS_EXCEEDED,
                    limits.quota,
                    limits.quota - window.used,
                    reset,
                    retry_after_secs=state.retry_after(),
                    tokens=state,
                )
            spent.input += reserved.input
            spent.output += reserved.output
            spent.held += reserved.total
            state = TokenState(
                budget, reserved, spent.input, spent.output, tokens_reset, window=spent.ends_at
            )
        await bucket.limiter.acquire()  # has capacity: returns without waiting
        window.used += 1
        return Decision(
            Outcome.ALLOWED,
            limits.quota,
            limits.quota - window.used,
            reset,
            counted_in="local",
            window=window.ends_at,
            tokens=state,
        )

    def settle(self, tenant: str, decision: Decision, *, refund: bool, charged: Reservation | None) -> bool:
        """What :meth:`llm_gateway.adapters.redis_store.RedisStore.settle` does, in-process."""
        given = False
        window = self._windows.get(tenant)
        if refund and window is not None and window.ends_at == decision.window and window.used >= 1:
            window.used -= 1
            given = True
        tokens = decision.tokens
        spent = self._token_windows.get(tenant)
        if (
            charged is not None
            and tokens is not None
            and spent is not None
            and spent.ends_at == tokens.window
        ):
            spent.input = max(spent.input + charged.input - tokens.reservation.input, 0)
            spent.output = max(spent.output + charged.output - tokens.reservation.output, 0)
            spent.held = max(spent.held - tokens.reservation.total, 0)
        return given

    def _bucket(self, key: str, limits: Limits) -> _Bucket:
        bucket = self._buckets.pop(key, None)
        if bucket is None or bucket.rps != limits.rps or bucket.burst != limits.burst:
            bucket = _Bucket(limits.rps, limits.burst)
        self._buckets[key] = bucket
        for _ in range(_SWEEP_PER_CALL):
            oldest = next(iter(self._buckets))
            if oldest == key or (
                not self._buckets[oldest].idle() and len(self._buckets) <= self._max_entries
            ):
                break
            del self._buckets[oldest]
        return bucket


def _current(
    windows: dict[str, _Window], tenant: str, now: float, window_secs: int, max_entries: int
) -> _Window:
    """``tenant``'s window in ``windows`` (a new one when its last has ended), moved to the end of
    the last-use order; a few of the oldest, ended or beyond ``max_entries``, are evicted."""
    window = windows.pop(tenant, None)
    if window is None or window.ends_at <= now:
        window = _Window(now + window_secs)
    windows[tenant] = window  # re-inserted: the dict stays in last-use order
    for _ in range(_SWEEP_PER_CALL):
        oldest = next(iter(windows))
        if windows[oldest].ends_at > now and len(windows) <= max_entries:
            break
        del windows[oldest]
    return window
