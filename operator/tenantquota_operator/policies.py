"""What a TenantPolicy publishes, and the status that reports it (pure: no API, no Redis).

A TenantPolicy's spec is one :class:`~llm_gateway.core.policy.documents.PolicyDocument` whose source
is ``<namespace>/<name>``: the field it is published under in the policy map
(:mod:`llm_gateway.core.policy.published`) and the prefix of its policies' ids. Only a document that
validates against the gateway's schema is published (the gateways would leave any other out); the
status of one that does not gives Cedar's own message, and an earlier valid version stays published.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_gateway.core.policy.documents import InvalidPolicy, PolicyDocument, validate
from tenantquota_operator.conditions import condition, with_transitions

__all__ = ["Publication", "invalid_status", "publication", "published_status", "source_of"]


@dataclass(frozen=True, slots=True)
class Publication:
    """A valid TenantPolicy: the document to publish, and its policies' ids in document order."""

    document: PolicyDocument
    policy_ids: tuple[str, ...]


def source_of(namespace: str, name: str) -> str:
    """The source of TenantPolicy ``namespace/name``'s document: its field in the policy map."""
    return f"{namespace}/{name}"


def publication(namespace: str, name: str, spec: Mapping[str, Any]) -> Publication:
    """What TenantPolicy ``namespace/name`` with ``spec`` publishes; raises
    :class:`~llm_gateway.core.policy.documents.InvalidPolicy` with Cedar's message."""
    policy, description = spec.get("policy"), spec.get("description", "")
    if not isinstance(policy, str) or not isinstance(description, str):  # a CRD would have refused it
        raise InvalidPolicy("spec.policy and spec.description must be strings")
    document = PolicyDocument(source_of(namespace, name), policy, description)
    return Publication(document, tuple(validate(document)))


def published_status(
    previous: Iterable[Mapping[str, Any]], generation: int | None, policy_ids: tuple[str, ...]
) -> dict[str, Any]:
    """``status`` once ``policy_ids`` are published (Ready, reason ``Published``)."""
    count = f"{len(policy_ids)} polic{'y' if len(policy_ids) == 1 else 'ies'}"
    ready = condition("Ready", True, "Published", f"{count} in the policy map", generation)
    return _status(previous, generation, policy_ids, ready)


def invalid_status(
    previous: Iterable[Mapping[str, Any]],
    generation: int | None,
    message: str,
    kept: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``status`` of a TenantPolicy Cedar refuses with ``message`` (not Ready, reason ``InvalidPolicy``):
    nothing of it is published, and ``kept`` lists the ids of the last valid version, which stays in
    force (a typo in an edit must not lift a ``forbid``)."""
    if kept:
        policies = f"{len(kept)} polic{'y' if len(kept) == 1 else 'ies'}"
        message = f"{message} (the last valid version, {policies}, stays in force)"
    return _status(
        previous, generation, kept, condition("Ready", False, "InvalidPolicy", message, generation)
    )


def _status(
    previous: Iterable[Mapping[str, Any]],
    generation: int | None,
    policy_ids: tuple[str, ...],
    ready: dict[str, Any],
) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "policyIds": list(policy_ids),
        "conditions": with_transitions(previous, [ready]),
    }
