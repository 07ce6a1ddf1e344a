"""In-process enforcement: the embedded store without Redis, and the fallback when Redis is down.

Rate limits are aiolimiter leaky buckets (``BURST`` at once, ``RPS`` sustained) answered without
waiting; quotas are fixed windows. Both live in insertion-ordered dicts kept in last-use order, so
idle entries are found at the front and evicted a few per call: an entry whose bucket has drained or
whose window has ended carries no state a fresh one would not, so memory follows the number of keys
active recently, not the number ever seen. ``max_entries`` bounds it outright.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiolimiter import AsyncLimiter

from llm_gateway.core.quota import Decision, Limits, Outcome, rate_limited

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
    __slots__ = ("ends_at", "used")

    def __init__(self, ends_at: float) -> None:
        self.used = 0
        self.ends_at = ends_at


class LocalLimits:
    """Per-process limits. ``clock`` is monotonic seconds (injectable for tests)."""

    def __init__(self, *, max_entries: int = 200_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._windows: dict[str, _Window] = {}
        self._max_entries = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._buckets) + len(self._windows)

    async def check(self, tenant: str, rate_key: str, limits: Limits) -> Decision:
        """Admit or refuse one request of ``tenant`` under ``limits``, counting it when admitted."""
        now = self._clock()
        window = self._window(tenant, now, limits.window_secs)
        reset = window.ends_at - now
        bucket = self._bucket(rate_key, limits)
        if not bucket.limiter.has_capacity():
            return rate_limited(limits, 1 / bucket.rps)
        if window.used >= limits.quota:
            return Decision(Outcome.QUOTA_EXCEEDED, limits.quota, 0, reset, retry_after_secs=reset)
        await bucket.limiter.acquire()  # has capacity: returns without waiting
        window.used += 1
        return Decision(
            Outcome.ALLOWED,
            limits.quota,
            limits.quota - window.used,
            reset,
            counted_in="local",
            window=window.ends_at,
        )

    def refund(self, tenant: str, decision: Decision) -> bool:
        """Give back the unit ``decision`` counted, if its window is still the tenant's current one."""
        window = self._windows.get(tenant)
        if window is None or window.ends_at != decision.window or window.used < 1:
            return False
        window.used -= 1
        return True

    def _window(self, tenant: str, now: float, window_secs: int) -> _Window:
        window = self._windows.pop(tenant, None)
        if window is None or window.ends_at <= now:
            window = _Window(now + window_secs)
        self._windows[tenant] = window  # re-inserted: the dict stays in last-use order
        for _ in range(_SWEEP_PER_CALL):
            oldest = next(iter(self._windows))
            if self._windows[oldest].ends_at > now and len(self._windows) <= self._max_entries:
                break
            del self._windows[oldest]
        return window

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
