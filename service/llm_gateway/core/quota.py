"""Quota and rate-limit arithmetic, Redis key names and the admission Lua script (pure).

Key layout (kept from the gateway this project replaces, so `redis-cli GET quota:demo` still works):

- ``quota:{tenant}``: requests admitted in the tenant's current fixed window; expires
  ``QUOTA_WINDOW_SECS`` after the window's first request.
- ``ratelimit:{key}``: the GCRA "theoretical arrival time" (ms, Redis clock) of a rate-limit key.

One script evaluates both, so a request costs one Redis round trip. Its time is Redis's own clock
(``TIME``), so replicas with skewed clocks still share one window.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ADMIT_SCRIPT",
    "Decision",
    "FailureMode",
    "Limits",
    "Outcome",
    "format_reset",
    "quota_key",
    "rate_key",
    "share",
]


#: What a replica does when Redis does not answer (``QUOTA_FAILURE_MODE``).
FailureMode = Literal["local", "open", "closed"]


def quota_key(tenant: str) -> str:
    return f"quota:{tenant}"


def rate_key(key: str) -> str:
    return f"ratelimit:{key}"


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits for one request: ``quota`` per ``window_secs``; ``rps`` sustained, ``burst`` at once."""

    quota: int
    window_secs: int
    rps: float
    burst: int

    def divided(self, replicas: int) -> Limits:
        """This replica's share when ``replicas`` enforce independently: never more than the whole.

        Rounded up, so a tenant is never locked out by the division (a limit of 0 stays 0).
        """
        if replicas <= 1:
            return self
        return Limits(
            quota=share(self.quota, replicas),
            window_secs=self.window_secs,
            rps=self.rps / replicas,
            burst=share(self.burst, replicas),
        )


def share(limit: int, replicas: int) -> int:
    """``ceil(limit / replicas)``."""
    return -(-limit // replicas)


class Outcome(enum.Enum):
    ALLOWED = "allowed"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXCEEDED = "exceeded"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request, with what the client's ``x-ratelimit-*`` headers report.

    ``reset_secs`` is the time to the end of the quota window; ``retry_after_secs`` is how long a
    refused request should wait (0 when allowed). An unmetered decision (admitted while the quota
    backend is down in ``open`` mode) reports no headers rather than made-up numbers.
    """

    outcome: Outcome
    limit: int
    remaining: int
    reset_secs: float
    retry_after_secs: float = 0.0
    metered: bool = True

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The OpenAI-style rate-limit headers; refusals add ``Retry-After`` (s) and ``retry-after-ms``."""
        if not self.metered:
            return []
        headers = [
            (b"x-ratelimit-limit-requests", str(self.limit).encode()),
            (b"x-ratelimit-remaining-requests", str(self.remaining).encode()),
            (b"x-ratelimit-reset-requests", format_reset(self.reset_secs).encode()),
        ]
        if not self.allowed:
            wait = max(self.retry_after_secs, 0.001)
            headers.append((b"retry-after", str(math.ceil(wait)).encode()))
            headers.append((b"retry-after-ms", str(math.ceil(wait * 1000)).encode()))
        return headers


def format_reset(seconds: float) -> str:
    """A duration the way OpenAI writes its reset headers: ``250ms``, ``17s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{max(math.ceil(seconds * 1000), 0)}ms"
    total = math.ceil(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


#: KEYS: quota key, rate key. ARGV: quota limit, window ms, GCRA emission interval ms, burst.
#: Returns {outcome, used, window ms left, retry-after ms}; outcome 0 allowed, 1 rate limited,
#: 2 quota exceeded. A refused request changes nothing: the rate limit is checked first and its
#: state is only advanced for a request that is admitted, so a rate-limited request costs no quota.
#: The quota key gets its expiry in the same atomic step as its first increment, and a key found
#: without one (left by an older writer) gets it then, so a counter without a TTL cannot persist.
ADMIT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])

local used = tonumber(redis.call('GET', KEYS[1])) or 0
local left = redis.call('PTTL', KEYS[1])
if used > 0 and left == -1 then
  redis.call('PEXPIRE', KEYS[1], window)
  left = window
end
if left < 0 then left = window end

local tat = tonumber(redis.call('GET', KEYS[2])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {1, used, left, math.ceil(allow_at - now)}
end
if used >= limit then
  return {2, used, left, left}
end
redis.call('SET', KEYS[2], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
used = redis.call('INCR', KEYS[1])
if used == 1 then
  redis.call('PEXPIRE', KEYS[1], window)
  left = window
end
return {0, used, left, 0}
"""
