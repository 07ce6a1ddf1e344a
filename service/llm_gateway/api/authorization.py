"""Tenant policies at the edge: which Cedar policies apply (the files under ``POLICY_PATH`` and the
TenantPolicies the operator published), the decision for each request, and the decision log.

A request is decided after identity and routing, before admission: a denied request costs no quota
unit, no token and no upstream call. A deny answers 403 ``policy_denied`` naming the policies that
denied it (never their text) and writes one JSON line to the ``llm_gateway.policy`` logger; an allow
writes one at debug level. The lines carry the request id, the tenant as the access log shows it,
the action, the model and the policy ids, never the request's text.

Published policies replace each other whole: a document that does not validate is left out (and
logged once); the others apply. The gateway's Redis heartbeat applies them in a worker thread, so a
large change never stalls the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from llm_gateway.core.policy.authorizer import Authorizer, PolicyDecision
from llm_gateway.core.policy.documents import InvalidPolicy, PolicyDocument, assemble, validate
from llm_gateway.core.policy.facts import ModelFacts, RequestContext, TenantFacts
from llm_gateway.core.policy.published import decode_policy
from llm_gateway.errors import PolicyDenied

__all__ = ["DECISION_LOGGER", "Authorization"]

DECISION_LOGGER = "llm_gateway.policy"
log = logging.getLogger(__name__)
decisions = logging.getLogger(DECISION_LOGGER)


class Authorization:
    """The policies in force and the decisions they make.

    ``files``: the documents read from ``POLICY_PATH`` (validated already); ``default_allow``: what
    applies when no policy permits or forbids (``POLICY_DEFAULT``); ``pseudonym`` names a tenant in
    the decision log (as the access log does); ``on_denied(policies, action)`` hears every deny, and
    ``on_error(policy)`` every policy that failed to evaluate.
    """

    def __init__(
        self,
        files: Iterable[PolicyDocument],
        *,
        default_allow: bool,
        pseudonym: Callable[[str], str],
        on_denied: Callable[[tuple[str, ...], str], None] = lambda policies, action: None,
        on_error: Callable[[str], None] = lambda policy: None,
    ) -> None:
        self._files = [validate(document) for document in files]
        self._on_denied = on_denied
        self._on_error = on_error
        self._logged_errors: set[str] = set()
        self._default_allow = default_allow
        self._pseudonym = pseudonym
        self._published: Mapping[str, bytes] = {}
        self._validated: dict[str, tuple[bytes, dict[str, Any]]] = {}
        self._bad: dict[str, str] = {}
        self.authorizer = self._compile([])

    @property
    def active(self) -> bool:
        """False when no policy applies (every request allowed without a look)."""
        return self.authorizer.policies is not None

    def replace_published(self, raw: Mapping[str, bytes]) -> None:
        """Apply the published documents ``raw`` (the ``policy_map`` hash: field → value), unless
        they are what applies already. Only documents that changed are validated again; this may
        take a while for many (about 1 ms a document), so call it in a worker thread: Cedar
        releases the GIL meanwhile, and the policies in force apply until it returns."""
        if raw == self._published:
            return
        validated: dict[str, tuple[bytes, dict[str, Any]]] = {}
        bad: dict[str, str] = {}
        for field, value in raw.items():
            known = self._validated.get(field)
            if known is not None and known[0] == value:
                validated[field] = known
                continue
            try:
                validated[field] = (value, validate(decode_policy(field, value)))
            except (ValueError, InvalidPolicy) as error:
                bad[field] = str(error)
        if bad != self._bad:
            for field, problem in bad.items():
                log.warning("published policy %r ignored: %s", field, problem)
            self._bad = bad
        try:
            self.authorizer = self._compile([named for _, named in validated.values()])
        except InvalidPolicy as error:  # an id given twice: the policies in force stay
            log.warning("published policies not applied: %s", error)
            return
        self._validated, self._published = validated, dict(raw)
        self._logged_errors = set()
        policies = self.authorizer.policies
        log.info("tenant policies in force: %d", 0 if policies is None else len(policies.ids))

    def _compile(self, published: list[dict[str, Any]]) -> Authorizer:
        if not self._files and not published and self._default_allow:
            return Authorizer(None)
        return Authorizer(assemble([*self._files, *published], default_allow=self._default_allow))

    def check(
        self,
        tenant: TenantFacts,
        action: str,
        model: ModelFacts,
        context: RequestContext,
        request_id: str | None = None,
    ) -> None:
        """Raise :class:`PolicyDenied` when the policies deny ``tenant`` ``action`` on ``model``;
        ``request_id`` goes into the decision log (as in the access log)."""
        decision = self.decide(tenant, action, model, context, request_id)
        if not decision.allowed:
            raise PolicyDenied(_denial(decision))

    def decide(
        self,
        tenant: TenantFacts,
        action: str,
        model: ModelFacts,
        context: RequestContext,
        request_id: str | None = None,
    ) -> PolicyDecision:
        """The decision, logged and counted (see the module)."""
        decision = self.authorizer.decide(tenant, action, model, context)
        self._log(decision, tenant.name, action, model.name, request_id)
        if not decision.allowed:
            self._on_denied(decision.policies, action)
        return decision

    def visible(self, tenant: TenantFacts, context: RequestContext) -> Callable[[ModelFacts], bool]:
        """Whether the policies let ``tenant`` see a model (the action ``models``): one decision for
        every model when the policies make one, else one a model; no log line (a listing asks for
        many)."""
        alike = self.authorizer.decide_alike(tenant, "models", context)
        if alike is not None:
            self._erred(alike)
            return lambda _: alike.allowed
        authorizer = self.authorizer
        return lambda model: self._erred(authorizer.decide(tenant, "models", model, context)).allowed

    def _erred(self, decision: PolicyDecision) -> PolicyDecision:
        """Report the policies whose evaluation failed: logged once each (per policy set), counted
        every time."""
        for policy in decision.errors:
            self._on_error(policy)
            if policy not in self._logged_errors:
                self._logged_errors.add(policy)
                log.warning(
                    "tenant policy %r failed to evaluate and was skipped (a forbid that fails forbids"
                    " nothing): check it with `secure-llm-gateway policy check`",
                    policy,
                )
        return decision

    def _log(
        self, decision: PolicyDecision, tenant: str, action: str, model: str, request_id: str | None
    ) -> None:
        self._erred(decision)
        level = logging.DEBUG if decision.allowed else logging.INFO
        if decisions.isEnabledFor(level):
            decisions.log(
                level,
                "policy decision",
                extra={
                    "access": {
                        "request_id": request_id,
                        "decision": "allow" if decision.allowed else "deny",
                        "tenant": self._pseudonym(tenant),
                        "action": action,
                        "model": model,
                        "policies": list(decision.policies),
                    }
                },
            )


#: How many of the denying policies a 403's message names (the decision log names them all).
MAX_NAMED_POLICIES = 5


def _denial(decision: PolicyDecision) -> str:
    policies = decision.policies
    if not policies:
        return "denied by policy: no policy permits this request"
    named = ", ".join(repr(policy) for policy in policies[:MAX_NAMED_POLICIES])
    more = len(policies) - MAX_NAMED_POLICIES
    return f"denied by polic{'ies' if len(policies) > 1 else 'y'} {named}" + (
        f" and {more} more" if more > 0 else ""
    )
