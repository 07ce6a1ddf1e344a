"""When an upstream attempt may be retried, how long to wait, and the budget that caps retries (pure).

A retry happens only before any byte reached the client; the async loop that makes attempts is
:mod:`llm_gateway.api.failover`. Waits are jittered exponential backoff ("full jitter":
uniform in ``[0, min(max, base * 2**n)]``), raised to the upstream's own ``retry-after-ms`` or
``Retry-After`` (seconds or an HTTP date) when it sent one. The :class:`RetryBudget` keeps
retries to a fraction of requests over a rolling window (as Finagle's and Envoy's retry budgets
do), so that an upstream that fails everything gets at most ``1 + ratio`` times the traffic.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from llm_gateway.core.rolling import RollingCounts

__all__ = [
    "DEFAULT_BREAKER_STATUSES",
    "DEFAULT_RETRY_STATUSES",
    "FAILOVER_STATUSES",
    "RetryBudget",
    "RetryPolicy",
    "upstream_retry_after",
]

#: Upstream statuses worth another attempt: rate limited, and the server-side failures.
DEFAULT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
#: Upstream statuses that count against a deployment's circuit breaker: those that say the upstream
#: as a whole is unavailable or out of capacity, or refuses the gateway's key. Not 500: what one
#: request contained can make an upstream fail it, and one client must not be able to open the
#: circuit for every tenant.
DEFAULT_BREAKER_STATUSES = frozenset({401, 403, 429, 502, 503, 504, 529})
#: Upstream statuses that move a request to another deployment, never back to the same one (the
#: deployment refuses the gateway's key: it will again).
FAILOVER_STATUSES = frozenset({401, 403})
#: Retries beyond this many double the backoff no further (the maximum is reached long before).
_MAX_DOUBLINGS = 30
#: The longest upstream ``Retry-After`` believed (seconds); longer ones are read as this.
_MAX_RETRY_AFTER = 3600.0

_REQUESTS, _RETRIES = 0, 1


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts a request may make and how long it may spend on them.

    ``max_attempts`` counts the first one (1: no retries, no fallbacks); ``deadline`` (seconds from
    the first attempt) is when no new attempt starts and no wait may end after; ``statuses`` are
    the upstream statuses retried, ``failover_statuses`` those (with first-byte timeouts) that only
    move a request to another deployment, ``breaker_statuses`` those that count as a deployment's
    failure (connect failures and first-byte timeouts always do). ``backoff`` and ``max_backoff`` in
    seconds.
    """

    max_attempts: int = 3
    deadline: float = 30.0
    backoff: float = 0.2
    max_backoff: float = 5.0
    statuses: frozenset[int] = field(default=DEFAULT_RETRY_STATUSES)
    breaker_statuses: frozenset[int] = field(default=DEFAULT_BREAKER_STATUSES)
    failover_statuses: frozenset[int] = field(default=FAILOVER_STATUSES)

    def wait(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first) of the same deployment."""
        jittered = rng.uniform(0.0, min(self.max_backoff, self.backoff * 2 ** min(retry - 1, _MAX_DOUBLINGS)))
        return max(jittered, retry_after or 0.0)


def upstream_retry_after(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """The upstream's own wait in seconds: ``retry-after-ms`` (OpenAI, Anthropic SDKs read it first),
    else ``Retry-After`` as seconds or an HTTP date (``now_epoch`` is the wall clock for it); None
    when absent or unreadable. At most an hour."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000
        except ValueError:
            value = float("nan")
        if 0 <= value < float("inf"):  # NaN, negative and infinite values are unreadable
            return min(value, _MAX_RETRY_AFTER)
    text = headers.get("retry-after")
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        try:  # a date in the past means "now"
            value = max(0.0, parsedate_to_datetime(text).timestamp() - now_epoch)
        except (TypeError, ValueError, OverflowError):
            return None
    return min(value, _MAX_RETRY_AFTER) if 0 <= value < float("inf") else None


class RetryBudget:
    """Retries allowed: ``min_per_second * window`` plus ``ratio`` times the requests of the last
    ``window`` seconds, minus the retries already made in it."""

    __slots__ = ("_counts", "_ratio", "_reserve")

    def __init__(self, ratio: float, min_per_second: float, window: float = 10.0) -> None:
        self._ratio = ratio
        self._reserve = min_per_second * window
        self._counts = RollingCounts(window)

    def request(self, now: float) -> None:
        """A client request arrived at the upstream stage (it earns ``ratio`` of a retry)."""
        self._counts.add(now, _REQUESTS)

    def try_retry(self, now: float) -> bool:
        """Spend one retry if the budget has one."""
        requests, retries = self._counts.totals(now)
        if retries + 1 > self._reserve + self._ratio * requests:
            return False
        self._counts.add(now, _RETRIES)
        return True
