"""Rolling counts (pure): what the window holds, slot by slot."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.core.rolling import RollingCounts


def test_counts_expire_a_window_later() -> None:
    counts = RollingCounts(10.0, width=2, buckets=10)
    counts.add(100.0, 0)
    counts.add(105.0, 1, 3)
    assert counts.totals(105.0) == [1, 3]
    assert counts.totals(110.5) == [0, 3]  # the first slot expired
    assert counts.totals(116.0) == [0, 0]
    counts.clear()
    assert counts.totals(116.0) == [0, 0]


@given(st.lists(st.tuples(st.floats(0, 3), st.integers(0, 1)), max_size=300))
def test_totals_equal_a_recount_of_the_window(steps: list[tuple[float, int]]) -> None:
    """Against a brute-force recount: every event whose slot is within the last ``buckets`` slots."""
    counts, now, events = RollingCounts(5.0, width=2, buckets=5), 50.0, []
    for delta, index in steps:
        now += delta
        counts.add(now, index)
        events.append((int(now / 1.0), index))
        newest = int(now / 1.0)
        expected = [sum(1 for slot, i in events if i == k and slot > newest - 5) for k in (0, 1)]
        assert counts.totals(now) == expected
