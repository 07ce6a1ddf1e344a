from __future__ import annotations

import pytest

from llm_gateway.core.concurrency import ConcurrencyLimit


def test_admits_up_to_the_limit_and_sheds_beyond_it() -> None:
    limit = ConcurrencyLimit(2)
    assert limit.try_acquire() and limit.try_acquire()
    assert not limit.try_acquire()
    assert limit.in_flight == 2
    limit.release()
    assert limit.try_acquire()


def test_unbalanced_release_is_a_bug_not_a_silent_miscount() -> None:
    with pytest.raises(RuntimeError):
        ConcurrencyLimit(1).release()


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ConcurrencyLimit(0)
