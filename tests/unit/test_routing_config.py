"""The routing file's model groups: what is accepted, and one line per problem for what is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_gateway.core.routing import Deployment
from llm_gateway.routing_config import load_routing

UPSTREAMS = [
    {"name": "a", "kind": "openai-compatible", "base_url": "http://a"},
    {"name": "b", "kind": "openai-compatible", "base_url": "http://b"},
]


def load(tmp_path: Path, routes: list[dict[str, Any]]) -> Any:
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump({"upstreams": UPSTREAMS, "routes": routes}))
    return load_routing(path)


def test_a_group_and_a_single_route_become_deployments(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        [
            {"model": "one", "upstream": "a", "upstream_model": "x"},
            {
                "model": "group",
                "deployments": [
                    {"upstream": "a", "weight": 3},
                    {"upstream": "b", "upstream_model": "y", "priority": 1},
                    {"upstream": "default", "upstream_model": "y"},
                ],
            },
        ],
    )
    one, group = config.model_routes()
    assert one.deployments == (Deployment("a", "x"),)
    assert group.deployments == (
        Deployment("a", None, 3, 0),
        Deployment("b", "y", 1, 1),
        Deployment("default", "y"),
    )


def one(**fields: Any) -> dict[str, Any]:
    """A route with a group of one deployment of upstream ``a`` with ``fields``."""
    return {"model": "m", "deployments": [{"upstream": "a", **fields}]}


NEITHER = "routes[0]: set upstream (with an optional upstream_model) or deployments"


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ({"model": "m"}, NEITHER),
        ({"model": "m", "deployments": None}, NEITHER),
        ({**one(), "upstream": "a"}, "routes[0]: set upstream or deployments, not both"),
        ({**one(), "upstream_model": "x"}, "upstream_model belongs in each of deployments"),
        ({"model": "m", "deployments": []}, "routes[0].deployments: List should have at least 1 item"),
        (one(weight=0), "routes[0].deployments[0].weight: Input should be greater than or equal to 1"),
        (one(weight=1001), "weight: Input should be less than or equal to 1000"),
        (one(weight=True), "weight: Input should be a valid integer"),
        (one(weight=1.5), "weight: Input should be a valid integer"),
        (one(priority=-1), "priority: Input should be greater than or equal to 0"),
        (one(upstream="c"), "routes[0].deployments[0].upstream: no upstream named 'c'"),
        ({"model": "m", "deployments": [{"upstream": "a"}] * 2}, "a deployment is listed twice"),
        (one(cost=1), "cost: Extra inputs are not permitted"),
        ({"model": "m", "deployments": [{"upstream": "a"}] * 65}, "List should have at most 64 items"),
    ],
)
def test_bad_groups_are_refused_with_one_line_each(
    tmp_path: Path, route: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError) as caught:
        load(tmp_path, [route])
    assert problem in str(caught.value), caught.value
    assert len(str(caught.value).splitlines()) == 1
