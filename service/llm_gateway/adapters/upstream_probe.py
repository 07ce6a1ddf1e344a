"""Readiness of the upstream: not ready until it has answered once, then ready for good.

A replica whose upstream is misconfigured (a wrong URL, a Service that serves nothing, a key the
upstream refuses) should never receive traffic: ``helm install --wait`` and a rolling update then stop
at it instead of replacing working pods with ones that answer every request with 502. Once the
upstream has answered, readiness no longer follows it: an upstream outage would take every replica
out of the Service at once, turning the upstream's errors into connection failures with no
``Retry-After`` and no error body, and readiness would flap with every blip.

At start-up the probe sends ``GET /v1/models`` with the gateway's key every ``interval`` seconds
until an answer counts (:func:`judge`); that request costs nothing at OpenAI-compatible providers.
"""

from __future__ import annotations

import asyncio
import contextlib

from llm_gateway.adapters.upstream import Upstream
from llm_gateway.errors import GatewayError

__all__ = ["UpstreamProbe", "judge"]

#: Statuses that mean the upstream refuses the gateway's own key: a misconfiguration, not reachability.
_REFUSED = frozenset({401, 403})


def judge(status: int) -> tuple[bool, str]:
    """Whether an upstream answer with HTTP ``status`` to ``GET /v1/models`` proves it usable.

    Any answer proves the address right (404 too: some OpenAI-compatible servers have no model list),
    except a refused key (401/403) and a server error (5xx: not serving yet).
    """
    if status in _REFUSED:
        return False, f"upstream refuses the gateway's key ({status})"
    if status >= 500:
        return False, f"upstream answers {status}"
    return True, "ok"


class UpstreamProbe:
    """The ``upstream`` readiness check (``check()``), probing from :meth:`start` until a good answer."""

    def __init__(self, upstream: Upstream, *, interval: float = 2.0, timeout: float = 5.0) -> None:
        """``interval``: seconds between probes; ``timeout``: seconds one probe may take."""
        self._upstream = upstream
        self._interval = interval
        self._timeout = timeout
        self._answered = False
        self._detail = "not probed yet"
        self._task: asyncio.Task[None] | None = None

    def check(self) -> tuple[bool, str]:
        """``(ready, detail)`` for ``/readyz``."""
        if not self._upstream.ready:
            return False, "closed"
        return self._answered, "ok" if self._answered else self._detail

    def start(self) -> None:
        """Start probing in the background (call once the upstream client is started)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="upstream-probe")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._answered:
            self._answered, self._detail = await self._probe()
            if not self._answered:
                await asyncio.sleep(self._interval)

    async def _probe(self) -> tuple[bool, str]:
        try:
            async with await self._upstream.open(
                "GET", "/models", body=None, headers={}, first_byte_timeout=self._timeout
            ) as response:
                return judge(response.status)
        except GatewayError as error:
            return False, str(error)
        except Exception as error:  # anything else must not end the probing: readiness would stick
            return False, f"probe failed: {type(error).__name__}"
