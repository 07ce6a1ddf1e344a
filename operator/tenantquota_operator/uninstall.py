"""``tenantquota-operator release-finalizers``: let TenantQuotas and TenantPolicies go when the operator
is uninstalled.

Every TenantQuota and TenantPolicy carries the operator's finalizer (``gateway.secure-llm.dev/live-map``):
deleting one waits until the operator has removed it from the live map. Once ``helm uninstall`` has
removed the operator, nothing removes the finalizer any more, so deleting one, or the namespace that
holds it, waits forever. The chart runs this command as a pre-delete hook, while the operator still
exists:

1. scale the operator's Deployment to 0 and wait until its pods are gone (a running operator would
   put the finalizer back on the next event);
2. remove the finalizer from every TenantQuota and TenantPolicy in the operator's scope (one
   namespace, or all).

The objects themselves are kept: they are the users', like the CRDs, which Helm also keeps. A
reinstalled operator adds its finalizer back when it resumes them. Exit status 1 with one line on
failure (the hook then fails, and ``helm uninstall`` says so).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from tenantquota_operator.handlers import FINALIZER

__all__ = ["release_finalizers"]

GROUP, VERSION = "gateway.secure-llm.dev", "v1alpha1"
PLURALS = ("tenantquotas", "tenantpolicies")
# The client would send a dict as a JSON Patch (a list of operations); this one is a merge patch.
_MERGE_PATCH: dict[str, Any] = {"_content_type": "application/merge-patch+json"}


async def release_finalizers(
    namespace: str, deployment: str, watch_namespace: str | None, wait_secs: float = 90.0
) -> int:
    """Steps 1 and 2 above; the number of objects released. TimeoutError if pods linger longer than
    ``wait_secs``."""
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    async with client.ApiClient() as api:
        apps, core, custom = client.AppsV1Api(api), client.CoreV1Api(api), client.CustomObjectsApi(api)
        try:
            scale = await apps.read_namespaced_deployment_scale(deployment, namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            scale = None  # already gone (deleted by hand, or a retried uninstall): nothing to stop
        if scale is not None:
            await apps.patch_namespaced_deployment_scale(deployment, namespace, {"spec": {"replicas": 0}})
        try:
            selector = scale.status.selector if scale else None
            return await _release(core, custom, namespace, selector, watch_namespace, wait_secs)
        except Exception:
            if scale is not None:  # leave the operator as it was: the uninstall failed, the release stays
                replicas = {"spec": {"replicas": scale.spec.replicas}}
                await apps.patch_namespaced_deployment_scale(deployment, namespace, replicas)
            raise


async def _release(  # step 2, after the wait of step 1 (no wait when ``selector`` is None)
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    selector: str | None,
    watch_namespace: str | None,
    wait_secs: float,
) -> int:
    if selector is not None:
        for _ in range(max(int(wait_secs), 1)):  # polled each second: the pods' deletion has no event here
            if not (await core.list_namespaced_pod(namespace, label_selector=selector)).items:
                break
            await asyncio.sleep(1)
        else:
            raise TimeoutError(f"the operator's pods ({selector}) still run after {wait_secs:.0f} s")
    released = 0
    for plural in PLURALS:
        released += await _release_all(custom, plural, watch_namespace)
    return released


async def _release_all(custom: client.CustomObjectsApi, plural: str, watch_namespace: str | None) -> int:
    """Remove the finalizer from every ``plural`` object in scope; how many had it."""
    if watch_namespace:
        listed = await custom.list_namespaced_custom_object(GROUP, VERSION, watch_namespace, plural)
    else:
        listed = await custom.list_cluster_custom_object(GROUP, VERSION, plural)
    released = 0
    for item in listed["items"]:
        meta = item["metadata"]
        finalizers = meta.get("finalizers") or []
        if FINALIZER not in finalizers:
            continue
        patch = {
            "metadata": {
                "finalizers": [f for f in finalizers if f != FINALIZER],
                "resourceVersion": meta["resourceVersion"],  # a concurrent change fails, not lost
            }
        }
        try:
            await custom.patch_namespaced_custom_object(
                GROUP, VERSION, meta["namespace"], plural, meta["name"], patch, **_MERGE_PATCH
            )
        except ApiException as error:
            if error.status != 404:  # deleted meanwhile: nothing to release
                raise
            continue
        released += 1
    return released


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tenantquota-operator release-finalizers", description=__doc__)
    parser.add_argument("--namespace", required=True, help="the release's namespace (the operator's)")
    parser.add_argument("--deployment", required=True, help="the operator's Deployment")
    parser.add_argument("--watch-namespace", default="", help="the operator's scope; empty: all namespaces")
    args = parser.parse_args(argv)
    try:
        scope = args.watch_namespace or None
        released = asyncio.run(release_finalizers(args.namespace, args.deployment, scope))
    except (ApiException, TimeoutError, config.ConfigException, aiohttp.ClientError) as error:
        reason = str(error)
        if isinstance(error, ApiException):
            body = error.body.decode(errors="replace") if isinstance(error.body, bytes) else str(error.body)
            reason = f"{error.status} {error.reason}: {body}"
        print(f"tenantquota-operator release-finalizers: {reason}", file=sys.stderr)
        sys.exit(1)
    print(f"tenantquota-operator: released {released} TenantQuota(s) and TenantPolicies from {FINALIZER}")
