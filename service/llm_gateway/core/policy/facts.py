"""What a policy sees (pure): the tenant (principal), the model (resource) and the request's context,
as Cedar entities and a Cedar context (see ``gateway.cedarschema``).

A context attribute is computed only when a policy needs it (:meth:`RequestContext.value`): most
cost a dictionary lookup, ``has_images`` one walk of the body, ``pii`` a scan of its model text.
Values are hashable (sets as sorted tuples), so that a decision can be cached by them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.core.policy.schema import ACTIONS, INVOKE, NOT_INVOKING
from llm_gateway.core.token_budget import OutputLimits, read_limit

__all__ = [
    "DEFAULT_TIER",
    "ModelFacts",
    "RequestContext",
    "TenantFacts",
    "entities_of",
    "network_class",
]

#: The tier of a tenant whose TenantQuota names none (and of tenants the live map does not hold).
DEFAULT_TIER = "default"
#: Content part types that carry an image, in every wire API (chat, Responses, Anthropic Messages).
_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
#: Fields that declare tools for the model to call (``functions``: chat's legacy form).
_TOOL_FIELDS = ("tools", "functions")


@dataclass(frozen=True, slots=True)
class TenantFacts:
    """A tenant as a Cedar principal: ``Tenant::"<name>"`` in its groups and namespace, tagged with
    its TenantQuota's labels."""

    name: str
    tier: str = DEFAULT_TIER
    groups: frozenset[str] = frozenset()
    namespace: str | None = None
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """A model as a Cedar resource: ``Model::"<name>"`` in every upstream that may serve it."""

    name: str
    api_family: str
    upstreams: tuple[str, ...] = ()
    upstream_kinds: frozenset[str] = frozenset()


def entities_of(tenant: TenantFacts, model: ModelFacts | None) -> list[dict[str, Any]]:
    """The Cedar entities (JSON form) a decision about ``tenant`` and ``model`` (None: any model)
    reads: the two of them and the actions with their group."""
    parents = [{"type": "Group", "id": group} for group in sorted(tenant.groups)]
    if tenant.namespace is not None:
        parents.append({"type": "Namespace", "id": tenant.namespace})
    return [
        {
            "uid": {"type": "Tenant", "id": tenant.name},
            "attrs": {"name": tenant.name, "tier": tenant.tier},
            "parents": parents,
            "tags": dict(tenant.labels),
        },
        *(
            []
            if model is None
            else [
                {
                    "uid": {"type": "Model", "id": model.name},
                    "attrs": {
                        "name": model.name,
                        "api_family": model.api_family,
                        "upstream_kinds": sorted(model.upstream_kinds),
                    },
                    "parents": [{"type": "Upstream", "id": upstream} for upstream in model.upstreams],
                }
            ]
        ),
        *(
            {
                "uid": {"type": "Action", "id": action},
                "attrs": {},
                "parents": [] if action in NOT_INVOKING else [{"type": "Action", "id": INVOKE}],
            }
            for action in ACTIONS
        ),
        {"uid": {"type": "Action", "id": INVOKE}, "attrs": {}, "parents": []},
    ]


def network_class(address: str | None) -> str:
    """``"loopback"``, ``"private"`` (RFC 1918, unique-local, link-local and the like), ``"public"``,
    or ``"unknown"`` for an address that is missing or not an IP address."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    return "private" if ip.is_private else "public"


@dataclass(slots=True)
class RequestContext:
    """The context of one request: each attribute of ``RequestContext`` in the schema, computed on
    first use and kept.

    ``payload`` is the parsed body (``{}`` for a listing), ``output_limits`` where its API names an
    output limit, ``pii`` a function returning the PII entity types in its model text, ``hour`` the
    UTC hour it arrived, ``client_network`` a function returning its client's
    :func:`network_class` (both functions are called only for a policy that reads them).
    """

    payload: Mapping[str, Any]
    body_bytes: int
    stream: bool
    output_limits: OutputLimits
    pii: Callable[[], Iterable[str]]
    hour: int
    client_network: Callable[[], str]
    _values: dict[str, Any] = field(default_factory=dict)

    def value(self, name: str) -> Any:
        """The attribute ``name`` (None: absent, as ``max_tokens`` when the request names no limit)."""
        try:
            return self._values[name]
        except KeyError:
            value = self._values[name] = self._compute(name)
            return value

    def _compute(self, name: str) -> Any:
        payload = self.payload
        match name:
            case "stream":
                return self.stream
            case "max_tokens":
                named = [
                    v for n in self.output_limits.fields if (v := read_limit(payload.get(n))) is not None
                ]
                return max(named, default=None)
            case "has_tools":
                return any(isinstance(v := payload.get(n), list) and v for n in _TOOL_FIELDS)
            case "has_images":
                return _has_image(payload)
            case "pii":
                return tuple(sorted(set(self.pii())))
            case "bytes":
                return self.body_bytes
            case "hour":
                return self.hour
            case "client_network":
                return self.client_network()
        raise KeyError(name)

    def cedar(self, names: Iterable[str]) -> dict[str, Any]:
        """The Cedar context with the attributes ``names`` (an absent one left out)."""
        context = {}
        for name in names:
            value = self.value(name)
            if value is not None:
                context[name] = list(value) if isinstance(value, tuple) else value
        return context


def _has_image(node: Any) -> bool:
    """True when ``node`` holds a content part of an image type; one walk, no recursion (a body is
    as deep as the gateway's JSON bounds allow)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            kind = item.get("type")
            if isinstance(kind, str) and kind in _IMAGE_PARTS:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
