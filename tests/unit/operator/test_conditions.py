from __future__ import annotations

from tenantquota_operator.conditions import condition, with_transitions


def test_transition_time_moves_only_when_the_status_does() -> None:
    previous = [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "Conflict", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
    ]
    current = with_transitions(
        previous,
        [condition("Ready", True, "Applied", "", 2), condition("Conflict", False, "NoConflict", "", 2)],
    )
    assert current[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # still True
    assert current[1]["lastTransitionTime"] != "2026-01-01T00:00:00Z"  # True → False: now
    assert current[0]["observedGeneration"] == 2
