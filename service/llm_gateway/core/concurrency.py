"""Per-replica limits on what is held at once, for load shedding (pure; single event loop, no lock)."""

from __future__ import annotations

__all__ = ["ConcurrencyLimit"]


class ConcurrencyLimit:
    """Admits at most ``limit`` units held at once (requests in flight, or bytes of request bodies);
    never queues.

    ``try_acquire(n)`` returns False when ``n`` more would not fit (the caller sheds the request);
    every successful acquire must be paired with a ``release()`` of the same amount.
    """

    __slots__ = ("in_flight", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.in_flight = 0

    def try_acquire(self, amount: int = 1) -> bool:
        if self.in_flight + amount > self.limit:
            return False
        self.in_flight += amount
        return True

    def release(self, amount: int = 1) -> None:
        if amount > self.in_flight:
            raise RuntimeError("release() of more than was acquired")
        self.in_flight -= amount
