"""A TenantQuota's ``status.usage`` from what the gateways counted (pure: no API, no Redis)."""

from __future__ import annotations

from typing import Any

from llm_gateway.core.quota_map import TokenBudget
from tenantquota_operator.conditions import timestamp
from tenantquota_operator.live_map import TokenUsage, Usage

__all__ = ["tokens_remaining", "usage_status"]


def usage_status(
    requests: int, counted: Usage, budget: TokenBudget | None, tokens: TokenUsage | None
) -> dict[str, Any]:
    """``status.usage``: ``used``, ``remaining`` and ``resetAt`` of the request quota and, with a token
    ``budget``, ``tokensUsed`` (input + output reserved and charged), ``tokensRemaining`` (see
    :func:`tokens_remaining`) and ``tokensResetAt``.

    Without a budget the token fields are null, which the status merge patch removes: a budget taken
    out of the spec leaves no stale numbers behind.
    """
    status: dict[str, Any] = {
        "used": counted.used,
        "remaining": max(requests - counted.used, 0),
        "resetAt": _time(counted.reset_at),
        "tokensUsed": None,
        "tokensRemaining": None,
        "tokensResetAt": None,
    }
    if budget is not None:
        tokens = tokens or TokenUsage(0, 0, None)
        status["tokensUsed"] = tokens.input + tokens.output
        status["tokensRemaining"] = tokens_remaining(budget, tokens)
        status["tokensResetAt"] = _time(tokens.reset_at)
    return status


def tokens_remaining(budget: TokenBudget, used: TokenUsage) -> int:
    """What is left of the binding limit: the smallest remainder among the limits ``budget`` sets
    (it sets at least one), never below 0 (a request charged more than it reserved can pass a limit)."""
    left = [
        limit - spent
        for limit, spent in (
            (budget.total, used.input + used.output),
            (budget.input, used.input),
            (budget.output, used.output),
        )
        if limit is not None
    ]
    return max(min(left), 0)


def _time(epoch: float | None) -> str | None:
    return None if epoch is None else timestamp(epoch)
