"""Which upstream serves a model (pure): the model routing table.

A route maps a model name, exact or a pattern with ``*`` (any characters), to its deployments (a
model group): each an upstream and optionally the name that upstream knows the model by, with a
weight and a priority. Exact names win over patterns; patterns are tried in the order they were
declared; a model no route names goes to the default upstream under its own name. Upstream kinds
say which wire APIs an upstream speaks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["FAMILIES", "ApiFamily", "Deployment", "ModelRoute", "RoutingTable", "UpstreamKind"]

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
class Deployment:
    """One place a model is served: ``upstream`` under ``model`` (None: the name the client used).

    Among the available deployments of a model, those of the lowest ``priority`` are chosen from,
    in proportion to ``weight`` (see :mod:`llm_gateway.core.balancer`); higher priorities are the
    fallbacks.
    """

    upstream: str
    model: str | None = None
    weight: int = 1
    priority: int = 0

    @property
    def name(self) -> str:
        """``upstream/model``, or ``upstream`` when it serves models under the client's names: the
        ``deployment`` label of the metrics (bounded: deployments come from the configuration)."""
        return self.upstream if self.model is None else f"{self.upstream}/{self.model}"


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """``model`` (exact, or a pattern with ``*``) is served by ``deployments`` (a model group)."""

    model: str
    deployments: tuple[Deployment, ...]


class RoutingTable:
    """Routes models to their deployments; the ``default`` upstream serves every model no route names."""

    def __init__(self, routes: tuple[ModelRoute, ...], default: str) -> None:
        self._exact = {r.model: _by_priority(r) for r in routes if "*" not in r.model}
        self._patterns = [
            (re.compile(".*".join(map(re.escape, r.model.split("*"))), re.DOTALL), _by_priority(r))
            for r in routes
            if "*" in r.model
        ]
        self.default = default
        self._fallthrough = (Deployment(default),)

    def route(self, model: str) -> tuple[Deployment, ...]:
        """The deployments of ``model``, lowest priority first; work is one dictionary lookup, plus
        one match per pattern."""
        found = self._exact.get(model)
        if found is None:
            found = next((group for pattern, group in self._patterns if pattern.fullmatch(model)), None)
        return self._fallthrough if found is None else found

    def deployments(self) -> list[Deployment]:
        """Every deployment of the table, each once (the default upstream's included)."""
        groups = [self._fallthrough, *self._exact.values(), *(group for _, group in self._patterns)]
        return list(dict.fromkeys(d for group in groups for d in group))

    def exact(self) -> dict[str, str]:
        """The model names routed exactly to more than the default upstream, with the upstream of
        their first deployment."""
        return {
            model: group[0].upstream
            for model, group in self._exact.items()
            if any(d.upstream != self.default for d in group)
        }


def _by_priority(route: ModelRoute) -> tuple[Deployment, ...]:
    return tuple(sorted(route.deployments, key=lambda d: d.priority))
