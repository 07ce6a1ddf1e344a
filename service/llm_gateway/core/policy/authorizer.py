"""Cedar decisions per request at the cost of a dictionary lookup (pure; no I/O).

A Cedar call costs 130-530 µs, most of a request's budget. Most of a decision, though, depends only
on who asks for what: the tenant (principal), the action and the model (resource). So a (tenant,
action, model) met a second time is evaluated *partially*, the context unknown
(``is_authorized_partial``): either that decides (a permit or forbid that needs no context), and the
decision is kept, or some policies stay undecided, and their residuals name the context attributes
they read. Later requests of that triple then look the decision up by those attributes' values
alone; a new combination of values costs one full evaluation, kept likewise. The first request of a
triple is evaluated in full only: a partial evaluation costs more (1.5 ms at 100 policies) and pays
off only for triples that come again, so a flood of one-off model names costs one evaluation each.

Tenants no policy names (``Tenant::"x"``) are decided as one, under an id no policy names: in
``AUTH_MODE=open`` every API key is a tenant. The keys hold the tenant's and model's facts whole, so
a changed tenant (a new tier, a new group) is a new key; a changed policy set is a new
:class:`Authorizer`. The caches are bounded (:data:`MAX_ENTRIES` each, the oldest dropped first)
and hold no Cedar objects, so a flood of new tenants or models costs Cedar calls, never memory. They
may be used from several threads (a model listing is filtered in a worker thread).

:meth:`Authorizer.decide_uncached` is the reference the cached path must agree with (a property
test checks that it does).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from typing import Any, Final

import cedarpy
import orjson

from llm_gateway.core.policy.analysis import UNKNOWN_CONTEXT, context_reads
from llm_gateway.core.policy.documents import CompiledPolicies
from llm_gateway.core.policy.facts import ModelFacts, RequestContext, TenantFacts, entities_of
from llm_gateway.core.policy.schema import CONTEXT_ATTRIBUTES

__all__ = ["ALLOWED", "MAX_ENTRIES", "Authorizer", "PolicyDecision"]

#: How many decisions (and how many triples, of each kind) an :class:`Authorizer` keeps.
MAX_ENTRIES: Final = 16_384
#: How Cedar names the policy an evaluation error came from.
_ERRED = re.compile(r"while evaluating policy `([^`]*)`")


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """``allowed``, and the ids of the policies that determined it: the permits that matched for an
    allow, the forbids that matched for a deny (none: no permit matched). ``errors``: the policies
    whose evaluation failed (Cedar skips them: a forbid that errs forbids nothing)."""

    allowed: bool
    policies: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


#: The decision when no policy exists.
ALLOWED: Final = PolicyDecision(True)
_UNKNOWN: Final = PolicyDecision(False, ("not known yet",))  # a cache's "absent", beside None


@dataclass(frozen=True, slots=True)
class _Undecided:
    """A triple whose decision depends on the context attributes ``reads``, through ``policies``."""

    reads: tuple[str, ...]
    policies: frozenset[str] | None  # None: every policy


_Key = tuple[TenantFacts, str, ModelFacts]


class Authorizer:
    """Decides requests against ``policies`` (None: no policy, everything allowed)."""

    def __init__(self, policies: CompiledPolicies | None, *, max_entries: int = MAX_ENTRIES) -> None:
        self.policies = policies
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._named = None if policies is None else policies.named_tenants
        self._unnamed = "" if not self._named else "~" * (max(map(len, self._named)) + 1)
        self._reads_any = () if policies is None else policies.reads
        self._seen: dict[_Key, None] = {}  # met once: evaluated in full, not analysed yet
        self._triples: dict[_Key, PolicyDecision | _Undecided] = {}
        self._decisions: dict[tuple[_Key, tuple[Any, ...]], PolicyDecision] = {}
        self._alike: dict[tuple[TenantFacts, str, tuple[Any, ...]], PolicyDecision | None] = {}

    def reads(self, tenant: TenantFacts, action: str, model: ModelFacts) -> tuple[str, ...]:
        """The context attributes the decision for ``tenant`` doing ``action`` on ``model`` may read
        (every one any policy reads, until the triple is analysed), so that a costly one is computed
        only when it counts."""
        known = self._triples.get((self._as_decided(tenant), action, model))
        if known is None:
            return self._reads_any
        return () if isinstance(known, PolicyDecision) else known.reads

    def decide(
        self, tenant: TenantFacts, action: str, model: ModelFacts, context: RequestContext
    ) -> PolicyDecision:
        """The decision for ``tenant`` doing ``action`` on ``model`` with ``context`` (see the module)."""
        if self.policies is None:
            return ALLOWED
        tenant = self._as_decided(tenant)
        key = (tenant, action, model)
        known = self._triples.get(key)
        if known is None:
            if key not in self._seen:
                self._keep(self._seen, key, None)
                return self._evaluate(tenant, action, model, context.cedar(self._reads_any))
            known = self._keep(self._triples, key, self._partially(tenant, action, model))
        if isinstance(known, PolicyDecision):
            return known
        values = tuple(context.value(name) for name in known.reads)
        decision = self._decisions.get((key, values))
        if decision is None:
            decision = self._evaluate(tenant, action, model, context.cedar(known.reads))
            if known.policies is not None:  # the others may err only for the attributes left out
                decision = replace(decision, errors=tuple(e for e in decision.errors if e in known.policies))
            self._keep(self._decisions, (key, values), decision)
        return decision

    def decide_alike(
        self, tenant: TenantFacts, action: str, context: RequestContext
    ) -> PolicyDecision | None:
        """The decision for ``tenant`` doing ``action`` on any model, when the policies make the same
        for every model; None when it depends on the model. One partial evaluation (the resource
        unknown) per tenant and context, kept: a model listing asks once, not once a model.
        ``context`` must be one whose attributes are all cheap (a listing's)."""
        if self.policies is None:
            return ALLOWED
        tenant = self._as_decided(tenant)
        values = tuple(context.value(name) for name in CONTEXT_ATTRIBUTES)
        key = (tenant, action, values)
        known = self._alike.get(key, _UNKNOWN)
        if known is not _UNKNOWN:
            return known
        principal = _literal("Tenant", tenant.name)
        decision = None
        if principal is not None:
            request = {
                "principal": principal,
                "action": f'Action::"{action}"',
                "resource": None,
                "context": context.cedar(CONTEXT_ATTRIBUTES),
            }
            result = cedarpy.is_authorized_partial(request, self.policies.policy_set, _entities(tenant, None))
            if (
                result.decision is not cedarpy.Decision.NoDecision
                and not result.diagnostics.nontrivial_residuals
            ):
                decision = self._decision(
                    result.allowed, result.diagnostics.reasons, result.diagnostics.errors
                )
        self._keep(self._alike, key, decision)
        return decision

    def decide_uncached(
        self, tenant: TenantFacts, action: str, model: ModelFacts, context: RequestContext
    ) -> PolicyDecision:
        """The same decision from one full Cedar evaluation, every context attribute computed."""
        if self.policies is None:
            return ALLOWED
        return self._evaluate(tenant, action, model, context.cedar(CONTEXT_ATTRIBUTES))

    def _as_decided(self, tenant: TenantFacts) -> TenantFacts:
        """``tenant`` as far as the policies tell it apart (see the module)."""
        named = self._named
        if named is None or tenant.name in named or tenant.name == self._unnamed:
            return tenant
        return replace(tenant, name=self._unnamed)

    def _partially(self, tenant: TenantFacts, action: str, model: ModelFacts) -> PolicyDecision | _Undecided:
        """The decision of a triple whatever the context, or the context attributes it depends on."""
        assert self.policies is not None
        principal, resource = _literal("Tenant", tenant.name), _literal("Model", model.name)
        if principal is None or resource is None:  # no literal for these ids: every request is evaluated
            return _Undecided(CONTEXT_ATTRIBUTES, None)
        request = {
            "principal": principal,
            "action": f'Action::"{action}"',
            "resource": resource,
            "context": None,
        }
        result = cedarpy.is_authorized_partial(request, self.policies.policy_set, _entities(tenant, model))
        residuals, diagnostics = result.residuals, result.diagnostics
        if result.decision is cedarpy.Decision.NoDecision:
            if not residuals or diagnostics.errors:  # Cedar could not read the request itself
                return _Undecided(CONTEXT_ATTRIBUTES, None)
            undecided = set(diagnostics.nontrivial_residuals)
            return _Undecided(context_reads(residuals.values(), UNKNOWN_CONTEXT), frozenset(undecided))
        # Decided; but which policies decided it may still depend on the context: the undecided
        # policies of the decision's effect (forbids for a deny, permits for an allow).
        forbids, allowed = self.policies.forbids, result.allowed
        open_ = [p for p in diagnostics.nontrivial_residuals if (p in forbids) != allowed]
        if not open_:
            return self._decision(allowed, diagnostics.reasons, diagnostics.errors)
        return _Undecided(context_reads(map(residuals.get, open_), UNKNOWN_CONTEXT), frozenset(open_))

    def _evaluate(
        self, tenant: TenantFacts, action: str, model: ModelFacts, context: dict[str, Any]
    ) -> PolicyDecision:
        assert self.policies is not None
        request = {
            "principal": {"type": "Tenant", "id": tenant.name},
            "action": {"type": "Action", "id": action},
            "resource": {"type": "Model", "id": model.name},
            "context": context,
        }
        result = cedarpy.is_authorized(request, self.policies.policy_set, _entities(tenant, model))
        return self._decision(result.allowed, result.diagnostics.reasons, result.diagnostics.errors)

    def _decision(self, allowed: bool, reasons: list[str], errors: list[str]) -> PolicyDecision:
        """The decision, naming the policies of its effect among the satisfied ``reasons`` (a partial
        evaluation lists the permits that matched beside the forbid that denies), and those that
        erred."""
        assert self.policies is not None
        forbids = self.policies.forbids
        erred = tuple(sorted({m.group(1) for error in errors if (m := _ERRED.search(error))}))
        return PolicyDecision(allowed, tuple(sorted(r for r in reasons if (r in forbids) != allowed)), erred)

    def _keep(self, cache: dict[Any, Any], key: Any, value: Any) -> Any:
        with self._lock:
            if len(cache) >= self._max_entries:
                del cache[next(iter(cache))]  # the oldest: dicts keep insertion order
            cache[key] = value
        return value


def _entities(tenant: TenantFacts, model: ModelFacts | None) -> cedarpy.Entities:
    return cedarpy.Entities.from_json_str(orjson.dumps(entities_of(tenant, model)).decode())


def _literal(entity_type: str, entity_id: str) -> str | None:
    """``Type::"id"`` in Cedar's syntax, for the printable ASCII ids it takes as they are; None for
    others (Cedar's parser refuses ids it would normalise)."""
    if not (entity_id.isascii() and entity_id.isprintable()):
        return None
    escaped = entity_id.replace("\\", "\\\\").replace('"', '\\"')
    return f'{entity_type}::"{escaped}"'
