"""Per-replica in-flight limit for load shedding (pure; single event loop, so no lock is needed)."""

from __future__ import annotations

__all__ = ["ConcurrencyLimit"]


class ConcurrencyLimit:
    """Admits at most ``limit`` holders at once; never queues.

    ``try_acquire()`` returns False when full (the caller sheds the request); every successful
    acquire must be paired with exactly one ``release()``.
    """

    __slots__ = ("in_flight", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.in_flight = 0

    def try_acquire(self) -> bool:
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        if self.in_flight <= 0:
            raise RuntimeError("release() without a matching try_acquire()")
        self.in_flight -= 1
