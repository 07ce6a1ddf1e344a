"""Which upstream serves a model (pure): the model routing table.

A route maps a model name, exact or a pattern with ``*`` (any characters), to an upstream and
optionally to the name that upstream knows the model by. Exact names win over patterns; patterns
are tried in the order they were declared; a model no route names goes to the default upstream
under its own name. Upstream kinds say which wire APIs an upstream speaks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["FAMILIES", "ApiFamily", "ModelRoute", "Route", "RoutingTable", "UpstreamKind"]

UpstreamKind = Literal["openai", "azure-openai", "anthropic", "openai-compatible"]
#: The families of wire APIs: OpenAI's (chat completions, Responses, completions, embeddings) and
#: Anthropic's (Messages).
ApiFamily = Literal["openai", "anthropic"]

#: The API family each kind of upstream speaks.
FAMILIES: dict[UpstreamKind, ApiFamily] = {
    "openai": "openai",
    "azure-openai": "openai",
    "openai-compatible": "openai",
    "anthropic": "anthropic",
}


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """``model`` (exact, or a pattern with ``*``) is served by ``upstream`` as ``upstream_model``
    (None: under the name the client used)."""

    model: str
    upstream: str
    upstream_model: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request goes: an upstream's name and the model name it is sent under."""

    upstream: str
    model: str


class RoutingTable:
    """Routes models to upstreams; ``default`` serves every model no route names."""

    def __init__(self, routes: tuple[ModelRoute, ...], default: str) -> None:
        self._exact = {r.model: r for r in routes if "*" not in r.model}
        self._patterns = [
            (re.compile(".*".join(map(re.escape, r.model.split("*"))), re.DOTALL), r)
            for r in routes
            if "*" in r.model
        ]
        self.default = default

    def route(self, model: str) -> Route:
        """The route of ``model``; work is one dictionary lookup, plus one match per pattern."""
        found = self._exact.get(model)
        if found is None:
            found = next((r for pattern, r in self._patterns if pattern.fullmatch(model)), None)
        if found is None:
            return Route(self.default, model)
        return Route(found.upstream, found.upstream_model or model)

    def exact(self) -> dict[str, str]:
        """The model names routed exactly to another upstream than the default, with that upstream's name."""
        return {model: r.upstream for model, r in self._exact.items() if r.upstream != self.default}
