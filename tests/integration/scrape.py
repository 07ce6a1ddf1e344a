"""Reading the gateway's ``/metrics`` in tests, with prometheus_client's own text parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def scrape(base_url: str) -> list[Sample]:
    """Every sample ``GET /metrics`` exposes now."""
    text = httpx.get(base_url + "/metrics").text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when there are none)."""
    return sum(
        s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def label_values(samples: list[Sample], name: str, label: str) -> set[str]:
    """The values ``label`` takes across ``name``'s samples."""
    return {s.labels[label] for s in samples if s.name == name and label in s.labels}
