"""The routing file (``ROUTING_FILE``): upstreams declared once, and model routes to them.

YAML, validated by pydantic at start-up; every problem is reported, one line each, naming where it
is (``upstreams[1].kind: ...``)::

    upstreams:
      - name: claude                      # letters, digits, - and _
        kind: anthropic                   # openai | azure-openai | anthropic | openai-compatible
        base_url: https://api.anthropic.com
        api_key_env: ANTHROPIC_API_KEY    # or api_key_file: /var/run/secrets/claude/api-key
        headers: {anthropic-beta: ...}    # optional, sent with every request
      - name: azure
        kind: azure-openai
        base_url: https://example.openai.azure.com
        api_key_env: AZURE_OPENAI_API_KEY
        api_version: "2024-10-21"         # required for azure-openai
    routes:
      - model: "claude-*"                 # exact, or * for any characters
        upstream: claude
      - model: gpt-4o-eu
        upstream: azure
        upstream_model: gpt4o-deployment  # optional: the upstream's name for it (Azure: the deployment)
      - model: gpt-4o                     # a model group: several deployments
        deployments:
          - upstream: default             # weight (1-1000, default 1): share among the same priority
            weight: 3
          - upstream: azure
            upstream_model: gpt4o-deployment
          - upstream: backup              # priority (0-100, default 0): higher ones are fallbacks
            priority: 1

``OPENAI_BASE_URL``/``OPENAI_API_KEY`` stay the upstream named ``default`` (kind ``openai``), which
serves every model no route names; a file may route to it by that name, and may not declare it.
Keys are read when the file is: from the environment or from a mounted Secret's file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from yarl import URL

from llm_gateway.core.api_request import is_model_name
from llm_gateway.core.routing import Deployment, ModelRoute, UpstreamKind

__all__ = ["DEFAULT_UPSTREAM", "RoutingConfig", "UpstreamConfig", "load_routing"]

#: The name of the upstream ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` describe.
DEFAULT_UPSTREAM = "default"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")


class UpstreamConfig(BaseModel):
    """One upstream. ``api_key`` is filled from ``api_key_env`` or ``api_key_file``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: UpstreamKind
    base_url: str
    api_key_env: str | None = None
    api_key_file: Path | None = None
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    api_key: SecretStr | None = Field(None, exclude=True)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("letters, digits, '-' and '_', at most 63, starting with a letter or digit")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("an http:// or https:// URL")
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header in value.items():
            if not _HEADER.fullmatch(name) or any(c in header for c in "\r\n\0"):
                raise ValueError(f"header {name[:64]!r}: a token name and a single-line value")
        return value

    @model_validator(mode="after")
    def _read_key(self) -> UpstreamConfig:
        if self.kind == "azure-openai" and not self.api_version:
            raise ValueError("api_version is required for kind azure-openai")
        if self.api_key_env and self.api_key_file:
            raise ValueError("set api_key_env or api_key_file, not both")
        key: str | None = None
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ValueError(f"api_key_env: {self.api_key_env} is not set")
        elif self.api_key_file:
            try:
                key = self.api_key_file.read_text().strip()
            except OSError as exc:
                raise ValueError(f"api_key_file: cannot read {self.api_key_file} ({exc.strerror})") from None
            if not key:
                raise ValueError(f"api_key_file: {self.api_key_file} is empty")
        elif self.kind != "openai-compatible":
            raise ValueError(f"kind {self.kind} needs a key: set api_key_env or api_key_file")
        return self.model_copy(update={"api_key": SecretStr(key) if key else None})


class DeploymentConfig(BaseModel):
    """One deployment of a model group: an upstream, the model's name there, a weight, a priority."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upstream: str
    upstream_model: str | None = None
    weight: int = Field(1, ge=1, le=1000, strict=True)
    priority: int = Field(0, ge=0, le=100, strict=True)

    @field_validator("upstream_model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        if value is not None and not is_model_name(value):
            raise ValueError("a model name: 1 to 256 printable characters")
        return value


class RouteConfig(BaseModel):
    """A model and where it is served: one ``upstream`` (and ``upstream_model``), or ``deployments``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    upstream: str | None = None
    upstream_model: str | None = None
    deployments: list[DeploymentConfig] | None = Field(None, min_length=1, max_length=64)

    @field_validator("model", "upstream_model")
    @classmethod
    def _check_model(cls, value: str | None) -> str | None:
        if value is not None and not is_model_name(value):
            raise ValueError("a model name: 1 to 256 printable characters")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> RouteConfig:
        if self.upstream is None and self.deployments is None:
            raise ValueError("set upstream (with an optional upstream_model) or deployments")
        if self.upstream is not None and self.deployments is not None:
            raise ValueError("set upstream or deployments, not both")
        if self.deployments is not None and self.upstream_model is not None:
            raise ValueError("upstream_model belongs in each of deployments")
        return self

    def group(self) -> list[DeploymentConfig]:
        """The route's deployments (one, for the ``upstream`` form)."""
        if self.deployments is not None:
            return self.deployments
        assert self.upstream is not None
        return [
            DeploymentConfig(upstream=self.upstream, upstream_model=self.upstream_model, weight=1, priority=0)
        ]


class RoutingConfig(BaseModel):
    """The whole file: upstreams with unique names, routes to declared upstreams (or ``default``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upstreams: list[UpstreamConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_references(self) -> RoutingConfig:
        problems = []
        names = [u.name for u in self.upstreams]
        for name in sorted({n for n in names if names.count(n) > 1 or n == DEFAULT_UPSTREAM}):
            problems.append(
                f"upstream {name!r} is declared twice"
                if name != DEFAULT_UPSTREAM
                else f"upstream {DEFAULT_UPSTREAM!r} is OPENAI_BASE_URL's; declare another name"
            )
        known = {*names, DEFAULT_UPSTREAM}
        models = [r.model for r in self.routes]
        for index, route in enumerate(self.routes):
            group = [(d.upstream, d.upstream_model) for d in route.group()]
            for number, (upstream, _) in enumerate(group):
                where = f"routes[{index}]." + (
                    "upstream" if route.deployments is None else f"deployments[{number}].upstream"
                )
                if upstream not in known:
                    problems.append(f"{where}: no upstream named {upstream!r}")
            if len(set(group)) < len(group):
                twice = "a deployment is listed twice (same upstream and upstream_model)"
                problems.append(f"routes[{index}].deployments: {twice}")
            if models.count(route.model) > 1 and models.index(route.model) != index:
                problems.append(f"routes[{index}].model: {route.model!r} is routed twice")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def model_routes(self) -> tuple[ModelRoute, ...]:
        return tuple(
            ModelRoute(
                r.model,
                tuple(Deployment(d.upstream, d.upstream_model, d.weight, d.priority) for d in r.group()),
            )
            for r in self.routes
        )


def load_routing(path: Path) -> RoutingConfig:
    """Read and validate the routing file; ``ValueError`` with one line per problem."""
    try:
        document: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{path} is not YAML: {problem}{where}") from None
    try:
        return RoutingConfig.model_validate(document or {})
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"{where.lstrip('.')}: {message}" if where else message)
        raise ValueError("\n".join(lines)) from None
