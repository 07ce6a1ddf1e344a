from __future__ import annotations

import pytest

from llm_gateway.core.quota_map import TokenBudget
from llm_gateway.core.token_budget import TokenLimits
from tenantquota_operator.live_map import TokenUsage, Usage
from tenantquota_operator.usage import tokens_remaining, usage_status

RESET = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def test_without_a_budget_the_token_fields_are_null_so_the_merge_patch_removes_them() -> None:
    assert usage_status(5, Usage(2, RESET), None, None) == {
        "used": 2,
        "remaining": 3,
        "resetAt": "2026-01-01T00:00:00Z",
        "tokensUsed": None,
        "tokensRemaining": None,
        "tokensResetAt": None,
    }


def test_with_a_budget_the_status_shows_tokens_used_remaining_and_reset() -> None:
    status = usage_status(5, Usage(9, None), TokenBudget(total=1000), TokenUsage(300, 200, RESET + 60))
    assert status == {
        "used": 9,
        "remaining": 0,  # never below 0
        "resetAt": None,
        "tokensUsed": 500,
        "tokensRemaining": 500,
        "tokensResetAt": "2026-01-01T00:01:00Z",
    }


def test_a_budget_without_a_window_yet_shows_it_whole() -> None:
    status = usage_status(5, Usage(0, None), TokenBudget(input=40, output=60), TokenUsage(0, 0, None))
    assert (status["tokensUsed"], status["tokensRemaining"], status["tokensResetAt"]) == (0, 40, None)


@pytest.mark.parametrize(
    ("budget", "used", "remaining"),
    [
        (TokenBudget(total=1000), TokenUsage(300, 200, None), 500),
        (TokenBudget(input=100), TokenUsage(30, 5000, None), 70),  # output is not limited
        (TokenBudget(output=100), TokenUsage(5000, 30, None), 70),
        (TokenBudget(total=1000, input=400), TokenUsage(350, 100, None), 50),  # input binds
        (TokenBudget(total=1000, input=900), TokenUsage(350, 600, None), 50),  # total binds
        (TokenBudget(total=1000, input=900, output=620), TokenUsage(350, 600, None), 20),  # output binds
        (TokenBudget(total=0), TokenUsage(0, 0, None), 0),
        (TokenBudget(output=100), TokenUsage(0, 130, None), 0),  # charged past the limit: 0, not -30
    ],
)
def test_tokens_remaining_is_the_smallest_remainder_among_the_limits_set(
    budget: TokenBudget, used: TokenUsage, remaining: int
) -> None:
    assert tokens_remaining(budget, used) == remaining
    # What the gateways report in x-ratelimit-remaining-tokens for the same window.
    limits = TokenLimits(budget.total, budget.input, budget.output, 60, 1)  # window, output cap: unused
    assert limits.remaining(used.input, used.output)[1] == remaining
