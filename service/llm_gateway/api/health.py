"""Liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

__all__ = ["Check", "health_router"]

#: A readiness check: ``(ready, detail)``. A dependency can be degraded (detail says so) yet ready.
Check = Callable[[], tuple[bool, str]]


def health_router(checks: dict[str, Check]) -> APIRouter:
    """``/healthz``: the process serves. ``/readyz``: every check is ready (503 otherwise), with details."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    @router.get("/readyz")
    async def readyz() -> Response:
        results = {name: check() for name, check in checks.items()}
        ready = all(ok for ok, _ in results.values())
        body = {
            "status": "ready" if ready else "not ready",
            "checks": {name: detail for name, (_, detail) in results.items()},
        }
        return Response(orjson.dumps(body), 200 if ready else 503, media_type="application/json")

    return router
