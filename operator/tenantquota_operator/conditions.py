"""Status conditions, Kubernetes style (pure): ``lastTransitionTime`` moves only when ``status`` does."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["condition", "timestamp", "with_transitions"]


def timestamp(epoch: float | None = None) -> str:
    """RFC 3339 in UTC, second precision (now when ``epoch`` is None)."""
    moment = (
        datetime.datetime.now(datetime.UTC)
        if epoch is None
        else datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(kind: str, status: bool, reason: str, message: str, generation: int | None) -> dict[str, Any]:
    """A condition that has just been observed (its transition time is now)."""
    result: dict[str, Any] = {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": timestamp(),
    }
    if generation is not None:
        result["observedGeneration"] = generation
    return result


def with_transitions(
    previous: Iterable[Mapping[str, Any]], current: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``current``, keeping each condition's earlier ``lastTransitionTime`` when its status is unchanged."""
    before = {item.get("type"): item for item in previous}
    for item in current:
        old = before.get(item["type"])
        if old is not None and old.get("status") == item["status"] and old.get("lastTransitionTime"):
            item["lastTransitionTime"] = old["lastTransitionTime"]
    return current
