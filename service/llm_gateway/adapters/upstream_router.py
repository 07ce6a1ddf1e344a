"""The upstreams of a gateway, the routing table over them, and their deployments' live state."""

from __future__ import annotations

from collections.abc import Iterable

from llm_gateway.adapters.upstream import Upstream
from llm_gateway.core.balancer import Balancer, DeploymentState
from llm_gateway.core.policy.facts import ModelFacts
from llm_gateway.core.routing import FAMILIES, ApiFamily, RoutingTable

__all__ = ["UpstreamRouter"]


class UpstreamRouter:
    """Every :class:`Upstream` by name, the :class:`RoutingTable` that maps a model to its deployments,
    and the :class:`Balancer` that holds each deployment's breaker.

    The table names only upstreams given here (the routing file is validated so); the default
    upstream serves every model no route names.
    """

    def __init__(self, upstreams: Iterable[Upstream], table: RoutingTable, balancer: Balancer) -> None:
        self._upstreams = {upstream.name: upstream for upstream in upstreams}
        self.table = table
        self.default = self._upstreams[table.default]
        self.balancer = balancer
        # Per routed group and API family: the deployments that speak it, lowest priority first.
        # Keyed by the group's identity: the table hands out the same tuples for as long as it lives.
        self._groups: dict[tuple[int, ApiFamily], list[DeploymentState]] = {}

    def route(self, model: str, family: ApiFamily) -> list[DeploymentState]:
        """The deployments of ``model`` whose upstream speaks ``family`` (empty: none does)."""
        deployments = self.table.route(model)
        key = (id(deployments), family)
        group = self._groups.get(key)
        if group is None:
            speaking = tuple(d for d in deployments if FAMILIES[self._upstreams[d.upstream].kind] == family)
            group = self._groups[key] = self.balancer.group(speaking)
        return group

    def describe(self, model: str, family: ApiFamily | None = None) -> ModelFacts:
        """``model`` as tenant policies see it: in every upstream that may serve it in ``family`` (None:
        in any family; its family is then its first deployment's)."""
        kinds = {d.upstream: self._upstreams[d.upstream].kind for d in self.table.route(model)}
        if family is not None:
            kinds = {name: kind for name, kind in kinds.items() if FAMILIES[kind] == family}
        else:
            family = FAMILIES[next(iter(kinds.values()))]
        return ModelFacts(model, family, tuple(kinds), frozenset(kinds.values()))

    def upstream(self, name: str) -> Upstream:
        return self._upstreams[name]

    async def start(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.start()

    async def close(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.close()
