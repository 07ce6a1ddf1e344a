"""``tenantquota-operator``: run the operator (one active replica: deploy it with the Recreate strategy).

Peering is off (``standalone``): two replicas running at once would both write. Exit status 2 with one
line per problem on bad configuration. ``tenantquota-operator release-finalizers ...`` is the chart's
pre-delete hook instead (:mod:`tenantquota_operator.uninstall`).
"""

from __future__ import annotations

import asyncio
import sys

import kopf
from pydantic import ValidationError

from tenantquota_operator.config import OperatorSettings
from tenantquota_operator.handlers import register


def main() -> None:
    if sys.argv[1:2] == ["release-finalizers"]:
        from tenantquota_operator import uninstall  # the hook's command needs nothing of the operator

        uninstall.main(sys.argv[2:])
        return
    try:
        settings = OperatorSettings()  # type: ignore[call-arg]  # pydantic-settings fills it from the environment
    except ValidationError as error:
        for problem in error.errors(include_url=False):
            print(
                f"tenantquota-operator: {str(problem['loc'][0]).upper()}: {problem['msg']}", file=sys.stderr
            )
        sys.exit(2)
    kopf.configure(log_format=kopf.LogFormat.JSON)
    registry = kopf.OperatorRegistry()
    register(settings, registry)
    namespaces = [settings.watch_namespace] if settings.watch_namespace else None
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=namespaces is None,
            namespaces=namespaces or [],
        )
    )


if __name__ == "__main__":
    main()
