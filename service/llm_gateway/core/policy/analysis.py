"""What a policy set depends on, read from Cedar's JSON form of its policies (pure, no recursion:
a policy's nesting is bounded, but walks stay iterative all the same).

- :func:`tenant_names`: the tenant ids the policies name, so tenants they do not name can share
  their decisions.
- :func:`context_reads`: the context attributes policies (or the residuals of a partial evaluation)
  read, so a decision is looked up by those values alone and a costly one (the PII scan) is computed
  only when read.
- :func:`depth`: how deeply a policy nests, bounded before it reaches Cedar's recursive code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from llm_gateway.core.policy.schema import CONTEXT_ATTRIBUTES

__all__ = ["CONTEXT", "UNKNOWN_CONTEXT", "context_reads", "depth", "tenant_names"]

#: The context as a policy names it, and as a partial evaluation's residual names it while unknown.
CONTEXT: Final = {"Var": "context"}
UNKNOWN_CONTEXT: Final = {"unknown": [{"Value": "context"}]}
_PRINCIPAL: Final = {"Var": "principal"}
#: The operators that read a principal's parts, not its id (``name`` excepted, below).
_PRINCIPAL_PARTS: Final = (".", "has", "hasTag", "getTag", "in")


def _nodes(roots: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Every JSON object under ``roots``, depth first."""
    stack = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def depth(node: Any) -> int:
    """How deeply ``node`` (parsed JSON) nests."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((value, level + 1) for value in item.values())
        elif isinstance(item, list):
            stack.extend((value, level + 1) for value in item)
    return deepest


def tenant_names(policies: Iterable[dict[str, Any]]) -> frozenset[str] | None:
    """The tenant ids ``policies`` name (``Tenant::"x"``, in a scope or a condition); None when one
    may depend on any tenant's id: it reads ``principal.name``, or uses the principal otherwise than
    through its attributes, tags, groups or a comparison with a named entity."""
    names: set[str] = set()
    uses, parts = 0, 0
    for node in _nodes(p.get(part) for p in policies for part in ("principal", "conditions")):
        if node == _PRINCIPAL:
            uses += 1
        if node.get("type") == "Tenant" and isinstance(node.get("id"), str):  # an entity reference
            names.add(node["id"])
        for operator in _PRINCIPAL_PARTS:
            access = node.get(operator)
            if isinstance(access, dict) and access.get("left") == _PRINCIPAL:
                if operator == "." and access.get("attr") == "name":
                    return None
                parts += 1
        for operator in ("==", "!="):  # compared with a named entity: its id is named above
            pair = node.get(operator)
            if isinstance(pair, dict) and _PRINCIPAL in (pair.get("left"), pair.get("right")):
                other = pair["right"] if pair.get("left") == _PRINCIPAL else pair.get("left")
                value = other.get("Value") if isinstance(other, dict) else None
                parts += isinstance(value, dict) and "__entity" in value
    return None if uses > parts else frozenset(names)


def context_reads(roots: Iterable[Any], context: dict[str, Any]) -> tuple[str, ...]:
    """The context attributes read under ``roots`` (policies, or residuals) where the context is
    ``context`` (:data:`CONTEXT`, or :data:`UNKNOWN_CONTEXT` in residuals), in the schema's order;
    every attribute when the context is used as a whole, or a root is missing (None)."""
    roots = list(roots)
    if any(root is None for root in roots):
        return CONTEXT_ATTRIBUTES
    reads: set[str] = set()
    uses = 0
    for node in _nodes(roots):
        if node == context:
            uses += 1
        for operator in (".", "has"):
            access = node.get(operator)
            if isinstance(access, dict) and access.get("left") == context:
                reads.add(str(access.get("attr")))
                uses -= 1
    if uses > 0 or not reads <= set(CONTEXT_ATTRIBUTES):
        return CONTEXT_ATTRIBUTES
    return tuple(name for name in CONTEXT_ATTRIBUTES if name in reads)
