"""kopf handlers: TenantPolicy resources in, the policy map and their status out.

Level-based like the TenantQuota handlers (:mod:`tenantquota_operator.handlers`, whose start-up
handler opens the live map these use): every change, and a periodic resync, publishes what the
TenantPolicy says when it differs from what is published; an edit Cedar refuses is not published (a
permanent error, shown in status) and the last valid version stays in force, as a Deployment keeps
its running pods through a bad rollout. The resync also withdraws documents no TenantPolicy backs.
Deleting a TenantPolicy withdraws its document before the finalizer lets it go. Redis failures are
temporary errors (retried with backoff).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from llm_gateway.core.policy.documents import InvalidPolicy
from tenantquota_operator.config import OperatorSettings
from tenantquota_operator.policies import invalid_status, publication, published_status, source_of
from tenantquota_operator.retrying import retried

__all__ = ["RESOURCE", "register"]

RESOURCE = ("gateway.secure-llm.dev", "v1alpha1", "tenantpolicies")

SourceIndex = kopf.Index[str, bool]
log = logging.getLogger(__name__)


def register(config: OperatorSettings, registry: kopf.OperatorRegistry) -> None:
    """Register the TenantPolicy handlers, configured by ``config``, in ``registry``."""

    @kopf.index(*RESOURCE, id="policy_sources", registry=registry)
    def policy_sources(namespace: str, name: str, **_: Any) -> dict[str, bool]:
        return {source_of(namespace, name): True}

    @kopf.timer(*RESOURCE, id="resync", interval=config.resync_interval_secs, registry=registry)
    @kopf.on.resume(*RESOURCE, registry=registry)
    @kopf.on.create(*RESOURCE, registry=registry)
    @kopf.on.update(*RESOURCE, field="spec", registry=registry)
    async def publish(
        spec: kopf.Spec,
        meta: kopf.Meta,
        status: kopf.Status,
        namespace: str,
        name: str,
        patch: kopf.Patch,
        policy_sources: SourceIndex,
        memo: kopf.Memo,
        **_: Any,
    ) -> None:
        with retried(memo, "redis"):
            # Redis first, the index after: a document is published only once its TenantPolicy is
            # indexed, so one published meanwhile is never taken for a stray.
            published = await memo.live_map.policy_sources()
            stray = published - set(policy_sources)
            if await memo.live_map.remove_policies(*stray):
                log.info("withdrew %d published policy documents no TenantPolicy backs", len(stray))
        await _publish(memo, spec, meta, status, namespace, name, patch)

    @kopf.on.delete(*RESOURCE, registry=registry)
    async def withdraw(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
        with retried(memo, "redis"):
            await memo.live_map.remove_policies(source_of(namespace, name))


async def _publish(
    memo: kopf.Memo,
    spec: Mapping[str, Any],
    meta: Mapping[str, Any],
    status: Mapping[str, Any],
    namespace: str,
    name: str,
    patch: kopf.Patch,
) -> None:
    generation = meta.get("generation")
    previous = status.get("conditions") or []
    try:
        published = publication(namespace, name, spec)
    except InvalidPolicy as error:
        memo.metrics.policies.labels("invalid").inc()
        with retried(memo, "redis"):  # an earlier, valid version stays in force
            kept = source_of(namespace, name) in await memo.live_map.policy_sources()
        ids = tuple(status.get("policyIds") or ()) if kept else ()
        patch.status.update(invalid_status(previous, generation, str(error), ids))
        raise kopf.PermanentError(str(error)) from None
    with retried(memo, "redis"):
        await memo.live_map.put_policy(published.document)
    memo.metrics.policies.labels("published").inc()
    patch.status.update(published_status(previous, generation, published.policy_ids))
