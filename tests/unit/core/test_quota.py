from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.core.quota import (
    QUOTA_RETRY_WITHIN_SECS,
    Decision,
    Limits,
    Outcome,
    format_reset,
    hash_tag,
    quota_key,
    rate_key,
    rate_limited,
    share,
    token_key,
)


def test_every_key_of_a_request_shares_its_tenants_hash_tag() -> None:
    assert quota_key("demo") == "quota:{demo}"
    assert token_key("demo") == "tokens:{demo}"
    assert rate_key("demo", "demo") == "ratelimit:{demo}"
    assert rate_key("anonymous", "127.0.0.1:/v1/chat/completions") == (
        "ratelimit:{anonymous}:127.0.0.1:/v1/chat/completions"
    )


def _cluster_tag(key: str) -> str:
    """What Redis Cluster hashes for ``key`` (its key hash tags rule)."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40))
def test_any_printable_tenant_keeps_its_keys_in_one_slot_and_apart_from_others(tenant: str) -> None:
    tags = {_cluster_tag(key) for key in (quota_key(tenant), token_key(tenant), rate_key(tenant, "k:1"))}
    assert len(tags) == 1
    assert tags == {hash_tag(tenant)[1:-1]}
    other = tenant + "}"
    assert _cluster_tag(quota_key(other)) != _cluster_tag(quota_key(tenant))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250ms"),
        (0.0, "0ms"),
        (1, "1s"),
        (17.2, "18s"),
        (60, "1m0s"),
        (360, "6m0s"),
        (3723, "1h2m3s"),
        (3600.0000001, "1h0m0s"),
        (59.99999, "1m0s"),
    ],
)
def test_reset_is_written_like_openai(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


@pytest.mark.parametrize(
    ("limit", "replicas", "each"), [(10, 2, 5), (50, 3, 17), (1, 4, 1), (0, 3, 0), (7, 1, 7)]
)
def test_share_rounds_up_so_nobody_is_locked_out(limit: int, replicas: int, each: int) -> None:
    assert share(limit, replicas) == each


def test_divided_limits_split_quota_rate_and_burst() -> None:
    limits = Limits(quota=50, window_secs=60, rps=6.0, burst=10).divided(3)
    assert limits == Limits(quota=17, window_secs=60, rps=2.0, burst=4)
    whole = Limits(quota=5, window_secs=60, rps=5.0, burst=10)
    assert whole.divided(1) is whole


def test_allowed_decision_headers() -> None:
    headers = dict(Decision(Outcome.ALLOWED, 120, 119, 59.5).headers())
    assert headers == {
        b"x-ratelimit-limit-requests": b"120",
        b"x-ratelimit-remaining-requests": b"119",
        b"x-ratelimit-reset-requests": b"1m0s",
    }


def test_refusal_headers_carry_retry_after_in_whole_seconds_and_ms() -> None:
    headers = dict(rate_limited(Limits(quota=5, window_secs=60, rps=5, burst=10), 0.2).headers())
    assert headers == {
        b"x-ratelimit-limit-requests": b"10",
        b"x-ratelimit-remaining-requests": b"0",
        b"x-ratelimit-reset-requests": b"200ms",
        b"retry-after": b"1",
        b"retry-after-ms": b"200",
        b"x-should-retry": b"true",
    }


@pytest.mark.parametrize(
    ("limit", "wait", "should_retry"),
    [
        (120, 0.5, b"true"),  # the window ends soon: a retry will succeed
        (120, QUOTA_RETRY_WITHIN_SECS, b"true"),
        (120, QUOTA_RETRY_WITHIN_SECS + 0.001, b"false"),
        (120, 3599.0, b"false"),  # an hourly window: SDKs must not sleep for it
        (0, 0.5, b"false"),  # a limit of 0 never admits
    ],
)
def test_a_quota_refusal_says_whether_retrying_can_succeed_soon(
    limit: int, wait: float, should_retry: bytes
) -> None:
    headers = dict(Decision(Outcome.QUOTA_EXCEEDED, limit, 0, wait, retry_after_secs=wait).headers())
    assert headers[b"x-should-retry"] == should_retry
    assert headers[b"retry-after-ms"] == str(math.ceil(wait * 1000)).encode()  # the truth, either way


def test_a_refunded_decision_reports_one_more_remaining_and_cannot_be_refunded_again() -> None:
    decision = Decision(Outcome.ALLOWED, 10, 3, 30, counted_in="redis", window=123.0)
    refunded = decision.refunded()
    assert (refunded.remaining, refunded.counted_in) == (4, None)
    assert Decision(Outcome.ALLOWED, 10, 10, 30, counted_in="local").refunded().remaining == 10


def test_unmetered_decision_reports_no_headers() -> None:
    assert Decision(Outcome.ALLOWED, 5, 5, 60, metered=False).headers() == []
