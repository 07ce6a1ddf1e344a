"""Counts over a rolling time window (pure; the clock is the caller's).

The window is split into ``buckets`` slots; a count lands in the slot of its time and expires with
it, so the window is accurate to one slot. Adding and summing cost O(buckets) at worst, O(1) when
the clock has not left the current slot.
"""

from __future__ import annotations

__all__ = ["RollingCounts"]


class RollingCounts:
    """``width`` counters (e.g. requests and failures) over the last ``window`` seconds."""

    __slots__ = ("_current", "_slot", "_slots", "_totals", "_width")

    def __init__(self, window: float, *, width: int = 2, buckets: int = 10) -> None:
        if window <= 0 or buckets < 1 or width < 1:
            raise ValueError("window, buckets and width must be positive")
        self._width = width
        self._slot = window / buckets
        self._slots = [[0] * width for _ in range(buckets)]
        self._totals = [0] * width
        self._current = 0  # index of the newest slot since the epoch of ``now``

    def add(self, now: float, index: int, amount: int = 1) -> None:
        """Count ``amount`` in counter ``index`` at time ``now`` (seconds, monotonic)."""
        self._advance(now)
        self._slots[self._current % len(self._slots)][index] += amount
        self._totals[index] += amount

    def totals(self, now: float) -> list[int]:
        """Every counter's sum over the window ending at ``now`` (a fresh list)."""
        self._advance(now)
        return list(self._totals)

    def clear(self) -> None:
        for slot in self._slots:
            slot[:] = [0] * self._width
        self._totals = [0] * self._width

    def _advance(self, now: float) -> None:
        newest = int(now / self._slot)
        if newest <= self._current:
            return
        # Slots between the old newest and the new one expire; at most every slot once.
        for index in range(self._current + 1, min(newest, self._current + len(self._slots)) + 1):
            slot = self._slots[index % len(self._slots)]
            for counter, value in enumerate(slot):
                self._totals[counter] -= value
            slot[:] = [0] * self._width
        self._current = newest
