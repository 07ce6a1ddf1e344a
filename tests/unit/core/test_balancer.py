"""Choosing a deployment (pure): breakers, priorities, weights, least in flight, untried first."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from llm_gateway.core.balancer import Balancer, DeploymentState
from llm_gateway.core.breaker import BreakerPolicy
from llm_gateway.core.routing import Deployment

A, B = Deployment("a", weight=3), Deployment("b", weight=1)
FALLBACK = Deployment("c", "model-c", priority=1)
POLICY = BreakerPolicy(failures=1, cooldown=10.0)


def balancer_and_group(*deployments: Deployment, seed: int = 1) -> tuple[Balancer, list[DeploymentState]]:
    balancer = Balancer(deployments, POLICY, random.Random(seed))
    return balancer, balancer.group(tuple(sorted(deployments, key=lambda d: d.priority)))


def open_breaker(state: DeploymentState, now: float = 0.0) -> None:
    breaker = state.health.breaker
    breaker.record(now, breaker.acquire(now), False)  # a failed connection: no tenant needed
    assert breaker.state == "open"


def test_unloaded_shares_follow_the_weights() -> None:
    balancer, group = balancer_and_group(A, B, FALLBACK)
    picks = Counter(balancer.pick(group, 0.0).name for _ in range(4000))  # type: ignore[union-attr]
    assert set(picks) == {"a", "b"}  # the fallback tier is never used while the first is healthy
    assert picks["a"] / 4000 == pytest.approx(0.75, abs=0.04)


def test_a_deployment_with_more_in_flight_per_weight_gets_fewer_picks() -> None:
    balancer, group = balancer_and_group(Deployment("a"), Deployment("b"))
    group[0].health.in_flight = 10  # slow: its attempts pile up
    assert {balancer.pick(group, 0.0).name for _ in range(200)} == {"b"}  # type: ignore[union-attr]
    group[1].health.in_flight = 10
    picks = Counter(balancer.pick(group, 0.0).name for _ in range(2000))  # type: ignore[union-attr]
    assert picks["a"] / 2000 == pytest.approx(0.5, abs=0.05)  # a tie: by weight


def test_in_flight_is_weighed() -> None:
    balancer, group = balancer_and_group(A, B)  # weights 3 and 1
    group[0].health.in_flight, group[1].health.in_flight = 5, 2  # 5/3 < 2/1
    assert balancer.pick(group, 0.0) is group[0]
    group[0].health.in_flight = 7  # 7/3 > 2/1
    assert balancer.pick(group, 0.0) is group[1]


def test_open_breakers_are_skipped_and_the_next_priority_takes_over() -> None:
    balancer, group = balancer_and_group(A, B, FALLBACK)
    open_breaker(group[0])
    assert {balancer.pick(group, 1.0).name for _ in range(50)} == {"b"}  # type: ignore[union-attr]
    open_breaker(group[1])
    assert balancer.pick(group, 1.0) is group[2]
    open_breaker(group[2])
    assert balancer.pick(group, 1.0) is None
    assert balancer.retry_after(group, 1.0) == pytest.approx(9.0)
    assert balancer.pick(group, 10.0) is not None  # cooldown over: probes go through


def test_a_retry_prefers_what_this_request_has_not_tried() -> None:
    balancer, group = balancer_and_group(A, B, FALLBACK)
    assert balancer.pick(group, 0.0, [group[0].health]) is group[1]
    assert balancer.pick(group, 0.0, [group[0].health, group[1].health]) is group[2]  # the fallback
    # Everything tried: the best priority again.
    tried = [state.health for state in group]
    assert balancer.pick(group, 0.0, tried) in group[:2]


def test_one_deployment_in_two_groups_shares_its_health() -> None:
    heavy, light = Deployment("a", "m", weight=5), Deployment("a", "m", weight=1, priority=1)
    balancer = Balancer([heavy, light, Deployment("b")], POLICY, random.Random(1))
    first, second = balancer.group((heavy,)), balancer.group((light, Deployment("b")))
    assert first[0].health is second[0].health
    open_breaker(first[0])
    assert balancer.pick(second, 1.0) is second[1]
    assert len(balancer.health()) == 2


def test_a_single_deployment_is_picked_while_its_breaker_allows() -> None:
    balancer, group = balancer_and_group(A)
    assert balancer.pick(group, 0.0) is group[0]
    open_breaker(group[0])
    assert balancer.pick(group, 5.0) is None
