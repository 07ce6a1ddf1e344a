"""Policy documents (pure): Cedar source from a TenantPolicy or a file, validated against the gateway's
schema and compiled, all documents together, into one policy set whose policy ids say where each
policy came from.

A policy's id is ``<source>:<its @id annotation>``, or ``<source>:<its index in the document>``
without one; ``<source>`` is ``<namespace>/<name>`` for a TenantPolicy and the file name for a file.
Those ids are what a 403, the decision log and ``policy check`` name (never a policy's text).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import cedarpy
import orjson

from llm_gateway.core.policy.schema import schema

__all__ = [
    "DEFAULT_ALLOW",
    "MAX_MESSAGE_CHARS",
    "CompiledPolicies",
    "InvalidPolicy",
    "PolicyDocument",
    "assemble",
    "compile_policies",
    "validate",
]

#: The id of the policy that permits what no policy forbids (``POLICY_DEFAULT=allow``).
DEFAULT_ALLOW: Final = "gateway:default-allow"
#: How much of Cedar's messages an error keeps (a Kubernetes condition, a log line).
MAX_MESSAGE_CHARS: Final = 2000
_PERMIT_ALL: Final = {
    "effect": "permit",
    "principal": {"op": "All"},
    "action": {"op": "All"},
    "resource": {"op": "All"},
    "conditions": [],
}


class InvalidPolicy(ValueError):
    """A document that does not parse or does not validate against the schema; the message is
    Cedar's own (cut at :data:`MAX_MESSAGE_CHARS`)."""


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """Cedar source (one or more policies) from ``source`` (``namespace/name`` or a file name)."""

    source: str
    text: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class CompiledPolicies:
    """Every policy of some documents as one Cedar policy set; ``ids`` lists them (the built-in
    :data:`DEFAULT_ALLOW` included when it is in the set)."""

    policy_set: cedarpy.PolicySet
    ids: tuple[str, ...]
    forbids: frozenset[str]
    #: Whether a policy tells tenants apart by their id (``Tenant::"x"``, ``principal.name``): when
    #: none does, tenants alike in everything else are decided alike, whatever their ids.
    names_tenants: bool
    est: str  # the set in Cedar's JSON form (what ``policy check`` evaluates uncached)


def validate(document: PolicyDocument) -> dict[str, Any]:
    """Check ``document`` against the schema; its policies in Cedar's JSON form, keyed by their
    gateway ids (see the module). Raises :class:`InvalidPolicy` with Cedar's message."""
    try:
        est = orjson.loads(cedarpy.policies_to_json_str(document.text))
    except ValueError as error:
        raise InvalidPolicy(_cut(str(error))) from None
    if est.get("templates"):
        raise InvalidPolicy(
            "policy templates (?principal, ?resource) are not supported: write static policies"
        )
    policies: dict[str, Any] = est.get("staticPolicies") or {}
    if not policies:
        raise InvalidPolicy("no policy in the document")
    result = cedarpy.validate_policies(document.text, schema(), release_gil=True)
    if not result.validation_passed:
        raise InvalidPolicy(_cut("; ".join(str(error) for error in result.errors)))
    named: dict[str, Any] = {}
    for index, (_, policy) in enumerate(sorted(policies.items(), key=lambda item: _index(item[0]))):
        annotation = (policy.get("annotations") or {}).get("id")
        policy_id = f"{document.source}:{annotation if annotation else index}"
        if policy_id in named:
            raise InvalidPolicy(f"two policies have the id {policy_id!r}: give each its own @id")
        named[policy_id] = policy
    return named


def compile_policies(documents: Iterable[PolicyDocument], *, default_allow: bool) -> CompiledPolicies:
    """One policy set of ``documents`` (each validated, see :func:`validate`), with the built-in
    :data:`DEFAULT_ALLOW` when ``default_allow``. Raises :class:`InvalidPolicy` for the first
    document that fails, naming its source, or when two documents give a policy the same id."""
    validated = []
    for document in documents:
        try:
            validated.append(validate(document))
        except InvalidPolicy as error:
            raise InvalidPolicy(f"{document.source}: {error}") from None
    return assemble(validated, default_allow=default_allow)


def assemble(validated: Iterable[Mapping[str, Any]], *, default_allow: bool) -> CompiledPolicies:
    """One policy set of documents :func:`validate` returned (so a change re-validates only the
    documents that changed: validation costs about 1 ms a document, assembly 36 µs a policy).
    Raises :class:`InvalidPolicy` when two of them give a policy the same id."""
    static: dict[str, Any] = {}
    for named in validated:
        clash = static.keys() & named.keys()
        if clash:
            raise InvalidPolicy(f"the policy id {min(clash)!r} is given twice")
        static.update(named)
    if default_allow:
        static[DEFAULT_ALLOW] = _PERMIT_ALL
    est = orjson.dumps({"staticPolicies": static, "templates": {}, "templateLinks": []}).decode()
    forbids = frozenset(policy_id for policy_id, policy in static.items() if policy["effect"] == "forbid")
    names_tenants = any(_names_tenants(policy) for policy in static.values())
    policy_set = cedarpy.PolicySet.from_json_str(est, release_gil=True)
    return CompiledPolicies(policy_set, tuple(static), forbids, names_tenants, est)


#: The operators that read a principal's parts, not its id (``name`` excepted, below).
_PRINCIPAL_PARTS = (".", "has", "hasTag", "getTag", "in")
_PRINCIPAL = {"Var": "principal"}


def _names_tenants(policy: dict[str, Any]) -> bool:
    """Whether ``policy`` (Cedar's JSON form) may depend on the principal's id: its scope names a
    tenant, a condition names one or reads ``principal.name``, or uses the principal otherwise than
    through its attributes, tags and groups (``[principal].contains(...)``: assume it does)."""
    scope = policy.get("principal", {})
    if scope.get("op") not in ("All", "in", "is") or (scope.get("entity") or {}).get("type") == "Tenant":
        return True
    uses, parts = 0, 0
    stack: list[Any] = [policy.get("conditions", [])]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node == _PRINCIPAL:
                uses += 1
            if (node.get("__entity") or {}).get("type") == "Tenant":
                return True
            for operator in _PRINCIPAL_PARTS:
                access = node.get(operator)
                if isinstance(access, dict) and access.get("left") == _PRINCIPAL:
                    if operator == "." and access.get("attr") == "name":
                        return True
                    parts += 1
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return uses > parts


def _index(parser_id: str) -> int:
    """The position of ``policy<N>``, the id Cedar's parser gives the N-th policy of a text."""
    return int(parser_id.removeprefix("policy")) if parser_id.removeprefix("policy").isdigit() else 0


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"
