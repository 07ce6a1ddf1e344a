"""The upstreams of a gateway and the routing table over them: which client serves a model."""

from __future__ import annotations

from collections.abc import Iterable

from llm_gateway.adapters.upstream import Upstream
from llm_gateway.core.routing import RoutingTable

__all__ = ["UpstreamRouter"]


class UpstreamRouter:
    """Every :class:`Upstream` by name, and the :class:`RoutingTable` that picks one per model.

    The table names only upstreams given here (the routing file is validated so); the default
    upstream serves every model no route names.
    """

    def __init__(self, upstreams: Iterable[Upstream], table: RoutingTable) -> None:
        self._upstreams = {upstream.name: upstream for upstream in upstreams}
        self.table = table
        self.default = self._upstreams[table.default]

    def route(self, model: str) -> tuple[Upstream, str]:
        """The upstream that serves ``model``, and the name it is sent under."""
        route = self.table.route(model)
        return self._upstreams[route.upstream], route.model

    async def start(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.start()

    async def close(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.close()
