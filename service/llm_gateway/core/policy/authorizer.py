"""Cedar decisions per request at the cost of a dictionary lookup (pure; no I/O).

A Cedar call costs 130-530 µs, most of a request's budget. Most of a decision, though, depends only
on who asks for what: the tenant (principal), the action and the model (resource). So the first
request of a (tenant, action, model) evaluates the policies *partially*, the context unknown
(``is_authorized_partial``): either that decides (a permit or forbid that needs no context), and the
decision is kept, or some policies stay undecided, and their residuals name the context attributes
they read. Later requests of that triple then look the decision up by those attributes' values
alone; a new combination of values costs one full evaluation, kept likewise. A request thus costs
at most one Cedar call per distinct (tenant, action, model, values of the attributes read), and the
rest are lookups.

The keys hold the tenant's and model's facts whole, so a changed tenant (a new tier, a new group)
is a new key; a changed policy set is a new :class:`Authorizer`. Both caches are bounded
(:data:`MAX_ENTRIES`, the oldest dropped first), so a flood of new tenants or models costs Cedar
calls, never memory.

:meth:`Authorizer.decide_uncached` is the reference the cached path must agree with (a property
test checks that it does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

import cedarpy
import orjson

from llm_gateway.core.policy.documents import CompiledPolicies
from llm_gateway.core.policy.facts import ModelFacts, RequestContext, TenantFacts, entities_of
from llm_gateway.core.policy.schema import CONTEXT_ATTRIBUTES

__all__ = ["ALLOWED", "MAX_ENTRIES", "Authorizer", "PolicyDecision"]

#: How many decisions (and how many undecided triples) an :class:`Authorizer` keeps.
MAX_ENTRIES: Final = 16_384
_UNKNOWN_CONTEXT: Final = {"unknown": [{"Value": "context"}]}


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """``allowed``, and the ids of the policies that determined it: the permits that matched for an
    allow, the forbids that matched for a deny (none: no permit matched)."""

    allowed: bool
    policies: tuple[str, ...] = ()


#: The decision when no policy exists.
ALLOWED: Final = PolicyDecision(True)


@dataclass(frozen=True, slots=True)
class _Undecided:
    """A triple whose decision depends on the context attributes ``reads``."""

    reads: tuple[str, ...]
    entities: cedarpy.Entities


_Key = tuple[TenantFacts, str, ModelFacts]


class Authorizer:
    """Decides requests against ``policies`` (None: no policy, everything allowed)."""

    def __init__(self, policies: CompiledPolicies | None, *, max_entries: int = MAX_ENTRIES) -> None:
        self.policies = policies
        self._max_entries = max_entries
        # Tenants no policy names are decided (and cached) as one, under an id no policy names: in
        # AUTH_MODE=open every API key is a tenant, and new keys must not each cost Cedar calls.
        self._named = None if policies is None else policies.named_tenants
        self._unnamed = "" if not self._named else "~" * (max(map(len, self._named)) + 1)
        self._triples: dict[_Key, PolicyDecision | _Undecided] = {}
        self._decisions: dict[tuple[_Key, tuple[Any, ...]], PolicyDecision] = {}

    def reads(self, tenant: TenantFacts, action: str, model: ModelFacts) -> tuple[str, ...]:
        """The context attributes the decision for ``tenant`` doing ``action`` on ``model`` depends on
        (none: it depends on no context), so that a costly one is computed only when it counts."""
        if self.policies is None:
            return ()
        known = self._triple(self._as_decided(tenant), action, model)
        return () if isinstance(known, PolicyDecision) else known.reads

    def decide(
        self, tenant: TenantFacts, action: str, model: ModelFacts, context: RequestContext
    ) -> PolicyDecision:
        """The decision for ``tenant`` doing ``action`` on ``model`` with ``context`` (see the module)."""
        if self.policies is None:
            return ALLOWED
        tenant = self._as_decided(tenant)
        key = (tenant, action, model)
        known = self._triples.get(key) or self._triple(tenant, action, model)
        if isinstance(known, PolicyDecision):
            return known
        values = tuple(context.value(name) for name in known.reads)
        decision = self._decisions.get((key, values))
        if decision is None:
            decision = self._evaluate(tenant, action, model, context.cedar(known.reads), known.entities)
            self._keep(self._decisions, (key, values), decision)
        return decision

    def decide_uncached(
        self, tenant: TenantFacts, action: str, model: ModelFacts, context: RequestContext
    ) -> PolicyDecision:
        """The same decision from one full Cedar evaluation, every context attribute computed."""
        if self.policies is None:
            return ALLOWED
        entities = cedarpy.Entities.from_json_str(orjson.dumps(entities_of(tenant, model)).decode())
        return self._evaluate(tenant, action, model, context.cedar(CONTEXT_ATTRIBUTES), entities)

    def _as_decided(self, tenant: TenantFacts) -> TenantFacts:
        """``tenant`` as far as the policies tell it apart (see ``__init__``)."""
        named = self._named
        if named is None or tenant.name in named or tenant.name == self._unnamed:
            return tenant
        return replace(tenant, name=self._unnamed)

    def _triple(self, tenant: TenantFacts, action: str, model: ModelFacts) -> PolicyDecision | _Undecided:
        key = (tenant, action, model)
        known = self._triples.get(key)
        if known is None:
            known = self._keep(self._triples, key, self._partially(tenant, action, model))
        return known

    def _partially(self, tenant: TenantFacts, action: str, model: ModelFacts) -> PolicyDecision | _Undecided:
        assert self.policies is not None
        entities = cedarpy.Entities.from_json_str(orjson.dumps(entities_of(tenant, model)).decode())
        principal, resource = _literal("Tenant", tenant.name), _literal("Model", model.name)
        if principal is None or resource is None:  # no literal for these ids: every request is evaluated
            return _Undecided(CONTEXT_ATTRIBUTES, entities)
        request = {
            "principal": principal,
            "action": f'Action::"{action}"',
            "resource": resource,
            "context": None,
        }
        result = cedarpy.is_authorized_partial(request, self.policies.policy_set, entities)
        residuals, diagnostics = result.residuals, result.diagnostics
        if result.decision is cedarpy.Decision.NoDecision:
            if not residuals or diagnostics.errors:  # Cedar could not read the request itself
                return _Undecided(CONTEXT_ATTRIBUTES, entities)
            return _Undecided(_reads(residuals), entities)
        # Decided; but which policies decided it may still depend on the context: the undecided
        # policies of the decision's effect (forbids for a deny, permits for an allow).
        forbids, allowed = self.policies.forbids, result.allowed
        open_ = {
            policy_id: residuals.get(policy_id)
            for policy_id in diagnostics.nontrivial_residuals
            if (policy_id in forbids) != allowed
        }
        if not open_:
            return self._decision(allowed, diagnostics.reasons)
        return _Undecided(_reads(open_), entities)

    def _evaluate(
        self,
        tenant: TenantFacts,
        action: str,
        model: ModelFacts,
        context: dict[str, Any],
        entities: cedarpy.Entities,
    ) -> PolicyDecision:
        assert self.policies is not None
        request = {
            "principal": {"type": "Tenant", "id": tenant.name},
            "action": {"type": "Action", "id": action},
            "resource": {"type": "Model", "id": model.name},
            "context": context,
        }
        result = cedarpy.is_authorized(request, self.policies.policy_set, entities)
        return self._decision(result.allowed, result.diagnostics.reasons)

    def _decision(self, allowed: bool, reasons: list[str]) -> PolicyDecision:
        """The decision, naming the policies of its effect among the satisfied ``reasons`` (a partial
        evaluation lists the permits that matched beside the forbid that denies)."""
        assert self.policies is not None
        forbids = self.policies.forbids
        return PolicyDecision(allowed, tuple(sorted(r for r in reasons if (r in forbids) != allowed)))

    def _keep(self, cache: dict[Any, Any], key: Any, value: Any) -> Any:
        if len(cache) >= self._max_entries:
            del cache[next(iter(cache))]  # the oldest: dicts keep insertion order
        cache[key] = value
        return value


def _literal(entity_type: str, entity_id: str) -> str | None:
    """``Type::"id"`` in Cedar's syntax, for the printable ASCII ids it takes as they are; None for
    others (Cedar's parser refuses ids it would normalise)."""
    if not (entity_id.isascii() and entity_id.isprintable()):
        return None
    escaped = entity_id.replace("\\", "\\\\").replace('"', '\\"')
    return f'{entity_type}::"{escaped}"'


def _reads(residuals: dict[str, Any]) -> tuple[str, ...]:
    """The context attributes the residual policies read (every attribute when one reads the context
    as a whole, or depends on another unknown), in the schema's order."""
    if any(residual is None for residual in residuals.values()):  # not given: assume the worst
        return CONTEXT_ATTRIBUTES
    reads: set[str] = set()
    unknowns = 0
    stack: list[Any] = list(residuals.values())
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "unknown" in node:
                unknowns += 1
            for operator in (".", "has"):
                access = node.get(operator)
                if isinstance(access, dict) and access.get("left") == _UNKNOWN_CONTEXT:
                    reads.add(str(access.get("attr")))
                    unknowns -= 1  # counted when the walk reaches it below
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    if unknowns > 0 or not reads <= set(CONTEXT_ATTRIBUTES):
        return CONTEXT_ATTRIBUTES
    return tuple(name for name in CONTEXT_ATTRIBUTES if name in reads)
