"""Token budgets (pure): reservations per API, what a request is charged, the stream cut."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.core.apis import CHAT_COMPLETIONS, COMPLETIONS, EMBEDDINGS, MESSAGES, RESPONSES, WireAPI
from llm_gateway.core.quota import Decision, Outcome, TokenState
from llm_gateway.core.sse import SSEDecoder, SSEEvent
from llm_gateway.core.token_budget import MAX_TOKENS, Reservation, TokenLimits, charge, reserve
from llm_gateway.core.usage import Usage

CAP = 4096


@pytest.mark.parametrize(
    ("api", "payload", "output", "written"),
    [
        (CHAT_COMPLETIONS, {"max_tokens": 100}, 100, None),
        (CHAT_COMPLETIONS, {"max_completion_tokens": 300}, 300, None),
        (CHAT_COMPLETIONS, {"max_tokens": 100, "max_completion_tokens": 300}, 300, None),  # the larger
        (CHAT_COMPLETIONS, {"max_tokens": 100, "n": 3}, 300, None),
        (CHAT_COMPLETIONS, {}, CAP, CAP),  # none named: the cap, written into the request
        (CHAT_COMPLETIONS, {"n": 2}, 2 * CAP, CAP),
        (CHAT_COMPLETIONS, {"max_tokens": "100"}, 100, None),  # as leniently as an upstream reads it
        (CHAT_COMPLETIONS, {"max_tokens": 99.2}, 100, None),
        (CHAT_COMPLETIONS, {"max_tokens": "many"}, CAP, CAP),  # not a number: not a limit
        (CHAT_COMPLETIONS, {"max_tokens": 0}, CAP, CAP),
        (CHAT_COMPLETIONS, {"max_tokens": True}, CAP, CAP),
        (COMPLETIONS, {"prompt": "hi"}, 16, None),  # the API's own default, nothing written
        (COMPLETIONS, {"prompt": ["a", "b"], "max_tokens": 10, "n": 2}, 40, None),
        (COMPLETIONS, {"prompt": [1, 2, 3], "max_tokens": 10}, 10, None),  # one prompt, as token ids
        (COMPLETIONS, {"prompt": [[1], [2]], "max_tokens": 10, "best_of": 3}, 60, None),
        (RESPONSES, {"max_output_tokens": 50}, 50, None),
        (RESPONSES, {"max_tokens": 50}, CAP, CAP),  # not this API's field
        (MESSAGES, {"max_tokens": 64}, 64, None),
        (EMBEDDINGS, {"input": "hi"}, 0, None),  # no output tokens
        (CHAT_COMPLETIONS, {"max_tokens": 10**9, "n": 10**12}, MAX_TOKENS, None),  # bounded for Redis
        (CHAT_COMPLETIONS, {"n": 10**30}, MAX_TOKENS, CAP),
    ],
)
def test_a_reservation_bounds_input_by_bytes_and_output_by_the_requests_limit(
    api: WireAPI, payload: dict[str, Any], output: int, written: int | None
) -> None:
    reservation, limit = reserve(123, payload, api.output_limits, TokenLimits(10**9, None, None, 60, CAP))
    assert reservation == Reservation(123, output)
    assert limit == written


@pytest.mark.parametrize(
    ("budget", "payload", "output", "written"),
    [
        (TokenLimits(2000, None, None, 60, CAP), {}, 1900, 1900),  # the cap, lowered to what could fit
        (TokenLimits(None, None, 300, 60, CAP), {"n": 2}, 300, 150),  # per answer
        (TokenLimits(None, 10**6, None, 60, CAP), {}, CAP, CAP),  # nothing bounds output
        (TokenLimits(50, None, None, 60, CAP), {}, CAP, CAP),  # the body alone does not fit: refused
        (TokenLimits(2000, None, None, 60, CAP), {"max_tokens": 5000}, 5000, None),  # named: as named
    ],
)
def test_the_cap_of_a_request_naming_no_limit_never_exceeds_what_the_budget_could_hold(
    budget: TokenLimits, payload: dict[str, Any], output: int, written: int | None
) -> None:
    reservation, limit = reserve(100, payload, CHAT_COMPLETIONS.output_limits, budget)
    assert (reservation.output, limit) == (output, written)


@pytest.mark.parametrize(
    ("usage", "delivered", "generated", "charged"),
    [
        (Usage(7, 20), None, True, Reservation(7, 20)),  # what the upstream reported
        (None, None, True, Reservation(100, 50)),  # an answer without usage: the whole reservation
        (None, None, False, Reservation(0, 0)),  # the upstream refused or never answered
        (Usage(0, 0), None, False, Reservation(0, 0)),
        (None, 5, True, Reservation(100, 5)),  # cut or left early: delivered output, reserved input
        (Usage(9, 0), 5, True, Reservation(9, 5)),  # Anthropic's message_start told the input
        (Usage(0, 0), 3, True, Reservation(100, 3)),
        (Usage(10**30, 10**40), None, True, Reservation(MAX_TOKENS, MAX_TOKENS)),  # an upstream's claim
    ],
)
def test_a_request_is_charged_what_it_cost(
    usage: Usage | None, delivered: int | None, generated: bool, charged: Reservation
) -> None:
    assert charge(Reservation(100, 50), usage, delivered, generated=generated) == charged


def test_limits_report_the_one_with_least_room_and_divide_rounding_up() -> None:
    limits = TokenLimits(total=1000, input=None, output=100, window_secs=60, output_cap=64)
    assert limits.remaining(500, 90) == (100, 10)  # output binds
    assert limits.remaining(950, 10) == (1000, 40)  # total binds
    assert limits.remaining(2000, 200) == (1000, 0)  # the furthest over
    assert limits.divided(3) == TokenLimits(334, None, 34, 60, 64)
    assert limits.divided(1) is limits
    assert limits.admits(900, 0, Reservation(50, 50))
    assert not limits.admits(900, 1, Reservation(50, 50))
    assert not limits.admits(0, 60, Reservation(0, 50))
    assert limits.fits(Reservation(900, 100)) and not limits.fits(Reservation(0, 101))


def _state(limits: TokenLimits, reservation: Reservation, used: tuple[int, int] = (0, 0)) -> TokenState:
    return TokenState(limits, reservation, used[0], used[1], reset_secs=30)


def test_a_token_refusal_is_retryable_only_when_the_reservation_can_ever_fit_soon() -> None:
    limits = TokenLimits(1000, None, None, 60, 64)
    soon = Decision(
        Outcome.TOKENS_EXCEEDED, 10, 5, 30, retry_after_secs=5, tokens=_state(limits, Reservation(10, 10))
    )
    assert soon.retryable
    later = Decision(Outcome.TOKENS_EXCEEDED, 10, 5, 30, retry_after_secs=50, tokens=soon.tokens)
    assert not later.retryable
    never = Decision(
        Outcome.TOKENS_EXCEEDED, 10, 5, 30, retry_after_secs=1, tokens=_state(limits, Reservation(10, 1000))
    )
    assert not never.retryable
    headers = dict(never.headers())
    assert headers[b"x-ratelimit-limit-tokens"] == b"1000"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"1000"
    assert headers[b"x-ratelimit-reset-tokens"] == b"30s"
    assert headers[b"x-should-retry"] == b"false"


def test_a_refunded_decision_reports_its_tokens_back() -> None:
    limits = TokenLimits(1000, None, None, 60, 64)
    admitted = Decision(
        Outcome.ALLOWED, 10, 5, 30, counted_in="redis", tokens=_state(limits, Reservation(100, 50), (300, 60))
    )
    assert dict(admitted.headers())[b"x-ratelimit-remaining-tokens"] == b"640"
    assert dict(admitted.refunded().headers())[b"x-ratelimit-remaining-tokens"] == b"790"


def _event(payload: Any) -> SSEEvent:
    return SSEEvent.of_data(orjson.dumps(payload))


def _raw(raw: bytes) -> SSEEvent:
    (event,) = SSEDecoder().decode(raw)
    return event


def _chat_chunk(*contents: str | None) -> SSEEvent:
    return _event(
        {
            "choices": [
                {"index": i, "delta": {"content": c} if c is not None else {}} for i, c in enumerate(contents)
            ]
        }
    )


@pytest.mark.parametrize(
    ("api", "event", "fragments"),
    [
        (CHAT_COMPLETIONS, _chat_chunk("Hel"), 1),
        (CHAT_COMPLETIONS, _chat_chunk("a", "b"), 2),  # two choices, one fragment each
        (CHAT_COMPLETIONS, _chat_chunk(""), 0),  # the empty first delta
        (CHAT_COMPLETIONS, _chat_chunk(None), 0),  # the finish chunk
        (CHAT_COMPLETIONS, _event({"choices": [], "usage": {"prompt_tokens": 1}}), 0),
        (
            CHAT_COMPLETIONS,
            _event(
                {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a'}}]}}]}
            ),
            1,
        ),
        (COMPLETIONS, _event({"choices": [{"text": "x"}]}), 1),
        (MESSAGES, _event({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}}), 1),
        (MESSAGES, _event({"type": "message_delta", "usage": {"output_tokens": 3}}), 0),
        (
            MESSAGES,
            _event({"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": "t"}}),
            1,
        ),
        (RESPONSES, _event({"type": "response.output_text.delta", "delta": "x"}), 1),
        (RESPONSES, _event({"type": "response.output_text.done", "text": "xyz"}), 0),  # a summary
        (CHAT_COMPLETIONS, _raw(b"data: [DONE]\n\n"), 0),
        (CHAT_COMPLETIONS, _raw(b": keepalive\n\n"), 0),
        (CHAT_COMPLETIONS, _event(["not", "an", "object"]), 0),
    ],
)
def test_stream_fragments_are_counted_where_each_api_streams_model_text(
    api: WireAPI, event: SSEEvent, fragments: int
) -> None:
    budget = api.stream_budget(100)
    assert budget.process([event]) == [event]
    assert budget.count == fragments


def test_a_stream_is_cut_before_the_fragment_that_would_pass_its_reservation() -> None:
    budget = CHAT_COMPLETIONS.stream_budget(3)
    events = [_chat_chunk(""), _chat_chunk("a"), _chat_chunk("b"), _chat_chunk("c", "d"), _chat_chunk("e")]
    assert budget.process(events) == events[:3]
    assert (budget.count, budget.exhausted) == (2, True)


@given(st.lists(st.integers(min_value=0, max_value=3), max_size=60), st.integers(min_value=0, max_value=40))
def test_what_passes_never_carries_more_fragments_than_reserved(choices: list[int], reserved: int) -> None:
    budget = CHAT_COMPLETIONS.stream_budget(reserved)
    events = [_chat_chunk(*(["w"] * n)) for n in choices]
    passed: list[SSEEvent] = []
    for start in range(0, len(events), 7):  # in reads of a few events, as the relay hands them over
        passed += budget.process(events[start : start + 7])
        if budget.exhausted:
            break
    sent = sum(choices[: len(passed)])
    assert sent == budget.count <= reserved
    assert budget.exhausted == (sum(choices) > reserved)
