"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

__all__ = ["health_router"]


def health_router(checks: dict[str, Callable[[], bool]]) -> APIRouter:
    """``/healthz``: the process serves. ``/readyz``: every named check passes (503 otherwise)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    @router.get("/readyz")
    async def readyz() -> Response:
        results = {name: "ok" if check() else "failing" for name, check in checks.items()}
        ready = all(state == "ok" for state in results.values())
        body = {"status": "ready" if ready else "not ready", "checks": results}
        return Response(orjson.dumps(body), 200 if ready else 503, media_type="application/json")

    return router
