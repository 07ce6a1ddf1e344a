"""Quota and rate-limit arithmetic, Redis key names and the admission Lua script (pure).

Key layout. Every key one request touches carries its tenant's id as a Redis Cluster hash tag
(the part in braces), so that they all live in one slot and one script can touch them together on
a Redis Cluster as on a single Redis (``redis-cli GET 'quota:{demo}'`` reads the demo tenant's
count):

- ``quota:{tenant}``: requests admitted in the tenant's current fixed window; expires
  ``QUOTA_WINDOW_SECS`` after the window's first request.
- ``ratelimit:{tenant}`` (the key is the tenant) or ``ratelimit:{tenant}:{key}``: the GCRA
  "theoretical arrival time" (ms, Redis clock) of a rate-limit key.
- ``tokens:{tenant}``: a hash of the tokens (``input``, ``output``) reserved and charged in the
  tenant's current token window; expires ``TOKEN_QUOTA_WINDOW_SECS`` after its first reservation.

The replaced gateway named them ``quota:tenant`` and ``ratelimit:key``: a cluster cannot run a
script over two keys in different slots. Upgrading starts every tenant's window afresh, once.

One script evaluates all three, so a request costs one Redis round trip. Its time is Redis's own
clock (``TIME``), so replicas with skewed clocks still share one window.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from typing import Literal

from llm_gateway.core.token_budget import Reservation, TokenLimits

__all__ = [
    "ADMIT_SCRIPT",
    "QUOTA_RETRY_WITHIN_SECS",
    "SETTLE_SCRIPT",
    "CountedIn",
    "Decision",
    "FailureMode",
    "Limits",
    "Outcome",
    "TokenState",
    "format_reset",
    "hash_tag",
    "quota_key",
    "rate_key",
    "rate_limited",
    "share",
    "token_key",
]


#: What a replica does when Redis does not answer (``QUOTA_FAILURE_MODE``).
FailureMode = Literal["local", "open", "closed"]


def hash_tag(tenant: str) -> str:
    """``{tenant}``: the Redis Cluster hash tag of a tenant's keys (``tenant`` as stored, see
    :func:`llm_gateway.core.privacy.storage_id`).

    The tag is what lies between a key's first ``{`` and the first ``}`` after it, so a ``}`` in the
    id is written ``%7D`` (and ``%`` as ``%25``, keeping distinct ids distinct): every key of one
    tenant then hashes the whole id, whatever characters it holds.
    """
    if "}" in tenant or "%" in tenant:
        tenant = tenant.replace("%", "%25").replace("}", "%7D")
    return "{" + tenant + "}"


def quota_key(tenant: str) -> str:
    return f"quota:{hash_tag(tenant)}"


def rate_key(tenant: str, key: str) -> str:
    """The rate-limit key of ``key`` (as stored), in ``tenant``'s slot."""
    tag = hash_tag(tenant)
    return f"ratelimit:{tag}" if key == tenant else f"ratelimit:{tag}:{key}"


def token_key(tenant: str) -> str:
    return f"tokens:{hash_tag(tenant)}"


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
    TOKENS_EXCEEDED = "tokens_exceeded"


#: A quota refusal whose window ends within this many seconds may be retried by the client (the
#: OpenAI and Anthropic SDKs wait out a ``Retry-After`` of up to 60 s); a later end is answered
#: with ``x-should-retry: false`` so SDKs fail at once instead of sleeping to the window's end.
QUOTA_RETRY_WITHIN_SECS = 10.0
#: How soon a token refusal suggests a retry while tokens are held by requests in flight (most
#: settle for less than they reserved, within the time a request takes).
HELD_RETRY_SECS = 1.0

#: Where an admitted request was counted, so that a refund goes back to the same place.
CountedIn = Literal["redis", "local"]


@dataclass(frozen=True, slots=True)
class TokenState:
    """A request's place in its tenant's token budget: the ``reservation`` it asked for, the
    ``used_input``/``used_output`` tokens of the window after it (before it, for a refusal),
    ``reset_secs`` to the window's end, ``window`` (the window's end on the counting store's
    clock: what a settlement must match, like :attr:`Decision.window`) and, for a refusal, the
    tokens ``held`` by requests not settled yet."""

    limits: TokenLimits
    reservation: Reservation
    used_input: int
    used_output: int
    reset_secs: float
    window: float = 0.0
    held: int = 0

    def retry_after(self) -> float:
        """When a refused reservation should be tried again: soon (``HELD_RETRY_SECS``) while other
        requests hold reservations that settling will partly return and it could fit at all, else at
        the window's end."""
        if self.held > 0 and self.limits.fits(self.reservation):
            return min(HELD_RETRY_SECS, self.reset_secs)
        return self.reset_secs

    def headers(self) -> list[tuple[bytes, bytes]]:
        """``x-ratelimit-{limit,remaining,reset}-tokens`` as OpenAI sends them (the limit with the
        least room left)."""
        limit, remaining = self.limits.remaining(self.used_input, self.used_output)
        return [
            (b"x-ratelimit-limit-tokens", str(limit).encode()),
            (b"x-ratelimit-remaining-tokens", str(remaining).encode()),
            (b"x-ratelimit-reset-tokens", format_reset(self.reset_secs).encode()),
        ]


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one request, with what the client's ``x-ratelimit-*`` headers report.

    The headers describe the limit that decided: the quota window (``limit`` requests per window,
    ``remaining``, ``reset_secs`` to its end) for an admitted or quota-refused request, the rate
    limit (``limit`` = its burst, ``remaining`` 0, ``reset_secs`` = the wait) for a rate-limited one.
    ``retry_after_secs`` is how long a refused request should wait (0 when allowed). An unmetered
    decision (admitted while the quota backend is down in ``open`` mode) reports no headers rather
    than made-up numbers. An admitted request names the store that ``counted_in`` it and that
    store's ``window`` (an opaque token: the window's end on that store's clock), so a refund can
    never take a unit from a later window. ``tokens`` is the request's token reservation when its
    tenant has a token budget (and, for a ``TOKENS_EXCEEDED`` refusal, what did not fit).
    """

    outcome: Outcome
    limit: int
    remaining: int
    reset_secs: float
    retry_after_secs: float = 0.0
    metered: bool = True
    counted_in: CountedIn | None = None
    window: float = 0.0
    tokens: TokenState | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED

    @property
    def retryable(self) -> bool:
        """Whether a refused request can succeed soon: a rate limit always can (its limits are
        positive); a quota only when its window ends within ``QUOTA_RETRY_WITHIN_SECS`` and it is
        not a limit of 0."""
        if self.outcome is Outcome.RATE_LIMITED:
            return True
        if self.outcome is Outcome.TOKENS_EXCEEDED:
            tokens = self.tokens
            fits = tokens is not None and tokens.limits.fits(tokens.reservation)
            return fits and self.retry_after_secs <= QUOTA_RETRY_WITHIN_SECS
        return self.limit > 0 and self.retry_after_secs <= QUOTA_RETRY_WITHIN_SECS

    def refunded(self) -> Decision:
        """This decision after its unit and its tokens were given back (nothing counted)."""
        tokens = self.tokens
        if tokens is not None:
            reserved = tokens.reservation
            tokens = replace(
                tokens,
                used_input=max(tokens.used_input - reserved.input, 0),
                used_output=max(tokens.used_output - reserved.output, 0),
            )
        return replace(self, remaining=min(self.remaining + 1, self.limit), counted_in=None, tokens=tokens)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The OpenAI-style rate-limit headers. Refusals add ``Retry-After`` (whole seconds),
        ``retry-after-ms`` and ``x-should-retry`` (``true``/``false``: what the official SDKs obey
        before their own retry policy)."""
        if not self.metered:
            return []
        headers = [
            (b"x-ratelimit-limit-requests", str(self.limit).encode()),
            (b"x-ratelimit-remaining-requests", str(self.remaining).encode()),
            (b"x-ratelimit-reset-requests", format_reset(self.reset_secs).encode()),
        ]
        if self.tokens is not None:
            headers.extend(self.tokens.headers())
        if not self.allowed:
            wait = max(self.retry_after_secs, 0.001)
            headers.append((b"retry-after", str(math.ceil(wait)).encode()))
            headers.append((b"retry-after-ms", str(math.ceil(wait * 1000)).encode()))
            headers.append((b"x-should-retry", b"true" if self.retryable else b"false"))
        return headers


def rate_limited(limits: Limits, wait_secs: float) -> Decision:
    """A rate-limit refusal, described by the rate limit itself: its burst, nothing left, ``wait_secs``."""
    return Decision(Outcome.RATE_LIMITED, limits.burst, 0, wait_secs, retry_after_secs=wait_secs)


def format_reset(seconds: float) -> str:
    """A duration the way OpenAI writes its reset headers: ``250ms``, ``17s``, ``6m0s``, ``1h2m3s``."""
    # Rounded to the millisecond first: a window of 3600 s read back as 3600.0000001 is "1h0m0s".
    seconds = round(seconds, 3)
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


#: KEYS: quota key, rate key[, token key]. ARGV: quota limit, window ms, GCRA emission interval ms,
#: burst[, token limits total, input, output (-1: none), token window ms, tokens reserved input,
#: output]. Returns {outcome, used, window ms left, retry-after ms, window end (ms, Redis clock),
#: tokens used input, output, token window ms left, token window end, tokens held by requests not
#: settled yet (the ``held`` field: what admissions add and settlements release)}; outcome 0 allowed, 1 rate
#: limited, 2 quota exceeded, 3 tokens exceeded (the reservation does not fit). A refused request
#: changes nothing: every check comes before any write, so a rate-limited request costs no quota and
#: a request refused for either costs no tokens.
#: Counters get their expiry in the same atomic step as their first write, and one found without
#: one (left by an older writer) gets it then, so a counter without a TTL cannot persist.
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
  return {1, used, left, math.ceil(allow_at - now), 0, 0, 0, 0, 0, 0}
end
if used >= limit then
  return {2, used, left, left, 0, 0, 0, 0, 0, 0}
end

local budget = #KEYS == 3
local t_in, t_out, t_held, t_left, t_ttl, t_window, r_in, r_out = 0, 0, 0, 0, 0, 0, 0, 0
if budget then
  t_window = tonumber(ARGV[8])
  r_in = tonumber(ARGV[9])
  r_out = tonumber(ARGV[10])
  local counts = redis.call('HMGET', KEYS[3], 'input', 'output', 'held')
  t_in = tonumber(counts[1]) or 0
  t_out = tonumber(counts[2]) or 0
  t_held = tonumber(counts[3]) or 0
  t_ttl = redis.call('PTTL', KEYS[3])
  if t_ttl == -1 then
    redis.call('PEXPIRE', KEYS[3], t_window)
    t_ttl = t_window
  end
  t_left = t_ttl
  if t_left < 0 then t_left = t_window end
  local total, l_in, l_out = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
  if (total >= 0 and t_in + t_out + r_in + r_out > total) or (l_in >= 0 and t_in + r_in > l_in)
      or (l_out >= 0 and t_out + r_out > l_out) then
    return {3, used, left, t_left, 0, t_in, t_out, t_left, 0, t_held}
  end
end

redis.call('SET', KEYS[2], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
used = redis.call('INCR', KEYS[1])
if used == 1 then
  redis.call('PEXPIRE', KEYS[1], window)
  left = window
end
if budget then
  t_in = redis.call('HINCRBY', KEYS[3], 'input', r_in)
  t_out = redis.call('HINCRBY', KEYS[3], 'output', r_out)
  t_held = redis.call('HINCRBY', KEYS[3], 'held', r_in + r_out)
  if t_ttl < 0 then redis.call('PEXPIRE', KEYS[3], t_window) end
end
local t_end = 0
if budget then t_end = math.floor(now + t_left) end
return {0, used, left, 0, math.floor(now + left), t_in, t_out, t_left, t_end, t_held}
"""

#: How far two readings of one window's end (``TIME`` + ``PTTL``, each to the millisecond) may
#: differ. A later window ends at least a whole window (≥ 1 s) after, so this cannot confuse them.
_SAME_WINDOW_MS = 50

#: Settlements, several at once: KEYS: for each, its quota key and its token key. ARGV: for each,
#: the quota window end the admission returned (0: no unit to give back), the token window end it
#: returned (0: no tokens to correct), tokens to add to input and to output (negative: given back),
#: and the tokens its reservation held (released from ``held``).
#: Gives each request's unit back to its window and corrects its tokens in theirs, atomically; a
#: window that has ended (and any later one) is left alone, and no count goes below zero. Returns,
#: for each, 1 when its unit was given back, else 0.
SETTLE_SCRIPT = f"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local function current(key, window_end)
  local left = redis.call('PTTL', key)
  return left >= 0 and math.abs(now + left - window_end) <= {_SAME_WINDOW_MS}
end
local given = {{}}
for n = 1, #KEYS / 2 do
  local quota, tokens, a = KEYS[2 * n - 1], KEYS[2 * n], 5 * (n - 1)
  local unit_window, token_window = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  given[n] = 0
  if unit_window > 0 and current(quota, unit_window)
      and (tonumber(redis.call('GET', quota)) or 0) >= 1 then
    redis.call('DECR', quota)
    given[n] = 1
  end
  if token_window > 0 and current(tokens, token_window) then
    local changes = {{tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), 0 - tonumber(ARGV[a + 5])}}
    for i, field in ipairs({{'input', 'output', 'held'}}) do
      if redis.call('HINCRBY', tokens, field, changes[i]) < 0 then
        redis.call('HSET', tokens, field, 0)
      end
    end
  end
end
return given
"""
