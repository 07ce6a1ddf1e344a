"""Policy documents (pure): Cedar source from a TenantPolicy or a file, validated against the gateway's
schema and compiled, all documents together, into one policy set whose policy ids say where each
policy came from.

A policy's id is ``<source>:<its @id annotation>``, or ``<source>:<its index in the document>``
without one; ``<source>`` is ``<namespace>/<name>`` for a TenantPolicy and the file name for a file.
Those ids are what a 403, the decision log and ``policy check`` name (never a policy's text).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import cedarpy
import orjson

from llm_gateway.core.policy.analysis import CONTEXT, context_reads, depth, tenant_names
from llm_gateway.core.policy.schema import schema

__all__ = [
    "DEFAULT_ALLOW",
    "MAX_DOCUMENT_CHARS",
    "MAX_MESSAGE_CHARS",
    "MAX_POLICY_DEPTH",
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
#: The longest document (a TenantPolicy's ``spec.policy`` is capped so by the CRD, a file alike).
MAX_DOCUMENT_CHARS: Final = 65_536
#: How deeply one policy may nest, in its JSON form (two levels an operator: ``a || b || c`` of 60
#: terms is about 120). Cedar's parser and evaluator recurse on the nesting, and its JSON reader
#: refuses past 128 levels, so deeper policies are refused here, with a message that says so.
MAX_POLICY_DEPTH: Final = 100
#: The stack Cedar parses a document on: a 64 KiB text of nested parentheses needs about 200 MiB (a
#: thread's default 8 MiB overflows at about 1,000 levels and kills the process). Only reserved.
_PARSER_STACK_BYTES: Final = 512 << 20
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
    #: The tenant ids the policies name (``Tenant::"x"``), or None when they may tell any tenant
    #: apart by id (``principal.name``): tenants alike in everything else, and named by no policy,
    #: are decided alike whatever their ids.
    named_tenants: frozenset[str] | None
    #: The context attributes any policy reads (the schema's order).
    reads: tuple[str, ...]
    est: str  # the set in Cedar's JSON form (what ``policy check`` evaluates uncached)


def validate(document: PolicyDocument) -> dict[str, Any]:
    """Check ``document`` against the schema; its policies in Cedar's JSON form, keyed by their
    gateway ids (see the module). Raises :class:`InvalidPolicy` with Cedar's message, or for a
    document longer than :data:`MAX_DOCUMENT_CHARS` or nested deeper than :data:`MAX_POLICY_DEPTH`.
    """
    if len(document.text) > MAX_DOCUMENT_CHARS:
        raise InvalidPolicy(f"the document is longer than {MAX_DOCUMENT_CHARS} characters")
    est, result = _on_a_deep_stack(_parse_and_validate, document.text)
    if est.get("templates"):
        raise InvalidPolicy(
            "policy templates (?principal, ?resource) are not supported: write static policies"
        )
    policies: dict[str, Any] = est.get("staticPolicies") or {}
    if not policies:
        raise InvalidPolicy("no policy in the document")
    if not result.validation_passed:
        raise InvalidPolicy(_cut("; ".join(str(error) for error in result.errors)))
    named: dict[str, Any] = {}
    for index, (_, policy) in enumerate(sorted(policies.items(), key=lambda item: _index(item[0]))):
        if depth(policy) > MAX_POLICY_DEPTH:
            raise InvalidPolicy(
                f"policy {index} nests deeper than {MAX_POLICY_DEPTH} levels: write a long chain of"
                ' alternatives as a set (`["a", "b"].contains(resource.name)`)'
            )
        annotation = (policy.get("annotations") or {}).get("id")
        policy_id = f"{document.source}:{annotation if annotation else index}"
        if policy_id in named:
            raise InvalidPolicy(f"two policies have the id {policy_id!r}: give each its own @id")
        named[policy_id] = policy
    return named


def _parse_and_validate(text: str) -> tuple[dict[str, Any], cedarpy.ValidationResult]:
    """Cedar's JSON form of ``text`` and its validation against the schema (both parse the text)."""
    try:
        est = orjson.loads(cedarpy.policies_to_json_str(text))
    except orjson.JSONDecodeError:  # nested past orjson's limit: far past MAX_POLICY_DEPTH
        raise InvalidPolicy(f"a policy nests deeper than {MAX_POLICY_DEPTH} levels") from None
    except ValueError as error:
        raise InvalidPolicy(_cut(str(error))) from None
    return est, cedarpy.validate_policies(text, schema())


def _on_a_deep_stack(work: Callable[[str], _T], text: str) -> _T:
    """``work(text)`` in a thread with a stack of :data:`_PARSER_STACK_BYTES` (its exception again)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, work(text)))
        except Exception as error:  # handed to the caller's thread as it is
            outcome.append((False, error))

    with _STACK_SIZE:  # the size applies to threads started while it is set
        previous = threading.stack_size(_PARSER_STACK_BYTES)
        try:
            thread = threading.Thread(target=run, name="cedar-parser")
            thread.start()
        finally:
            threading.stack_size(previous)
    thread.join()
    [(ok, value)] = outcome
    if not ok:
        raise value
    return cast(_T, value)


_STACK_SIZE = threading.Lock()
_T = TypeVar("_T")


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
    named_tenants = tenant_names(static.values())
    reads = context_reads(static.values(), CONTEXT)
    try:
        policy_set = cedarpy.PolicySet.from_json_str(est, release_gil=True)
    except ValueError as error:  # not expected of validated documents: refused, not raised on
        raise InvalidPolicy(_cut(f"Cedar refused the policy set: {error}")) from None
    return CompiledPolicies(policy_set, tuple(static), forbids, named_tenants, reads, est)


def _index(parser_id: str) -> int:
    """The position of ``policy<N>``, the id Cedar's parser gives the N-th policy of a text."""
    return int(parser_id.removeprefix("policy")) if parser_id.removeprefix("policy").isdigit() else 0


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"
