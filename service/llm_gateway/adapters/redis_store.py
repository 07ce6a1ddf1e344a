"""Shared quota state in Redis: one ``EVALSHA`` per request; a heartbeat does everything else.

Per request, :meth:`RedisStore.admit` runs :data:`~llm_gateway.core.quota.ADMIT_SCRIPT` (quota and rate
limit together) over a pipelined connection of its own (see
:class:`~llm_gateway.adapters.redis_script.ScriptConnection`); a request that failed before the client
got anything gives its unit back with :meth:`RedisStore.refund`
(:data:`~llm_gateway.core.quota.REFUND_SCRIPT`). Once a second a heartbeat script refreshes this
replica's presence in the ``gateway_replicas`` sorted set (so every replica knows how many share the
limits); the heartbeat then reads the live map's revision, and reloads the map when it moved. The
heartbeat doubles as the recovery probe: while Redis is unreachable, requests do not touch it at all
(:attr:`available` is False), and the first successful heartbeat brings enforcement back. State
changes are logged once, not per request.

On a Redis Cluster (``cluster=True``) the same calls go through redis-py's cluster client
(:mod:`llm_gateway.adapters.redis_cluster`): a request's keys share its tenant's slot, while the
heartbeat's and the map's keys lie in slots of their own, so no call spans two slots. The store is
available only while every master answers: a failed call makes the whole store unavailable, and the
heartbeat also pings every master, so enforcement comes back once a dead master's replica has taken
its slots over, not at every heartbeat that happened to miss the dead master.

Every Redis call is bounded by ``timeout`` (pool wait, connect and read together) and never retried:
a slow Redis must cost a request at most one timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from llm_gateway.adapters.redis_cluster import ClusterClient, ClusterScript
from llm_gateway.adapters.redis_script import ScriptConnection, ScriptRunner
from llm_gateway.core.api_keys import KEYS_KEY, KeyRing
from llm_gateway.core.quota import (
    ADMIT_SCRIPT,
    REFUND_SCRIPT,
    Decision,
    Limits,
    Outcome,
    quota_key,
    rate_key,
    rate_limited,
)
from llm_gateway.core.quota_map import MAP_KEY, REV_KEY, TenantEntry, decode_entry
from llm_gateway.core.quota_policy import QuotaPolicy

__all__ = ["REPLICAS_KEY", "BackendUnavailable", "RedisStore"]

log = logging.getLogger(__name__)

REPLICAS_KEY = "gateway_replicas"
_OUTCOMES = (Outcome.ALLOWED, Outcome.RATE_LIMITED, Outcome.QUOTA_EXCEEDED)
# redis-py's cluster client raises RedisClusterException (no RedisError) when no node it knows
# answers or the slots it read leave some uncovered.
_ERRORS = (RedisError, RedisClusterException, OSError, TimeoutError)

#: KEYS: replicas zset. ARGV: replica id, presence TTL ms. Returns the replicas present. (The map's
#: revision is read apart: on a Redis Cluster it lies in another slot.)
HEARTBEAT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


class BackendUnavailable(Exception):
    """Redis did not answer in time (or at all); the caller applies ``QUOTA_FAILURE_MODE``."""


class RedisStore:
    """Redis-backed admission for all replicas. ``on_error`` is called once per failed Redis call.

    ``storage_id`` turns tenant ids and rate-limit keys into what Redis key names and log lines
    carry (see :func:`llm_gateway.core.privacy.storage_id`). With a ``key_ring``, the key map is
    reloaded together with the quota map. With ``cluster``, ``url`` names one node of a Redis
    Cluster.
    """

    HEARTBEAT_SECS = 1.0
    PRESENCE_TTL_MS = 5_000
    FULL_RELOAD_SECS = 30.0

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        policy: QuotaPolicy,
        on_error: Callable[[], None],
        storage_id: Callable[[str], str],
        key_ring: KeyRing | None = None,
        max_connections: int = 32,
        cluster: bool = False,
    ) -> None:
        self._client: Redis | ClusterClient
        self._admit: ScriptRunner
        self._cluster: ClusterClient | None = None
        if cluster:
            self._client = self._cluster = ClusterClient.connect(url, max_connections=max_connections)
            self._admit = ClusterScript(self._cluster, ADMIT_SCRIPT)
        else:
            # A bounded pool: a burst of requests waits briefly for a connection instead of opening
            # one each (a connection storm that makes a healthy Redis look slow). Each call is bounded
            # as a whole by `asyncio.timeout` below (pool wait, connect and read together): redis-py's
            # own socket timeout would wrap every read in `asyncio.wait_for`, which costs a task per
            # call.
            pool = BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=None, retry=Retry(NoBackoff(), 0)
            )
            self._client = Redis(connection_pool=pool)
            self._admit = ScriptConnection(url, ADMIT_SCRIPT)
        self._timeout = timeout
        self._refund = self._client.register_script(REFUND_SCRIPT)
        self._heartbeat = self._client.register_script(HEARTBEAT_SCRIPT)
        self._policy = policy
        self._on_error = on_error
        self._storage_id = storage_id
        self._key_ring = key_ring
        self._id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._task: asyncio.Task[None] | None = None
        self._revision: bytes | None = None
        self._reloaded_at = 0.0
        self._bad_entries: dict[str, str] = {}
        self._state: bool | None = None  # None until the first call tells
        self.replicas = 0  # 0 until Redis has been reached once

    @property
    def available(self) -> bool:
        """True while the last Redis call succeeded."""
        return self._state is True

    async def start(self) -> None:
        """Reach Redis once (not fatal: the store then starts unavailable), then keep the heartbeat."""
        await self._beat()
        self._task = asyncio.create_task(self._heartbeat_loop(), name="redis-heartbeat")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.available:
            # On failure the entry expires by itself within PRESENCE_TTL_MS.
            with contextlib.suppress(*_ERRORS):
                async with asyncio.timeout(self._timeout):
                    await self._client.zrem(REPLICAS_KEY, self._id)
        self._admit.close()
        await self._client.aclose()

    async def admit(self, tenant: str, key: str, limits: Limits) -> Decision:
        """Evaluate quota and rate limit for one request in one round trip."""
        try:
            async with asyncio.timeout(self._timeout):
                outcome, used, left_ms, retry_ms, window_end = await self._admit.call(
                    [
                        quota_key(tenant_id := self._storage_id(tenant)),
                        rate_key(tenant_id, self._storage_id(key)),
                    ],
                    [limits.quota, limits.window_secs * 1000, 1000 / limits.rps, limits.burst],
                )
        except _ERRORS as exc:
            self._failed(exc)
            raise BackendUnavailable(str(exc)) from None
        if _OUTCOMES[outcome] is Outcome.RATE_LIMITED:
            return rate_limited(limits, retry_ms / 1000)
        return Decision(
            _OUTCOMES[outcome],
            limits.quota,
            max(limits.quota - used, 0),
            left_ms / 1000,
            retry_after_secs=retry_ms / 1000,
            counted_in="redis" if outcome == 0 else None,
            window=window_end,
        )

    async def refund(self, tenant: str, decision: Decision) -> bool:
        """Give back the unit ``decision`` counted, if its window is still the current one.

        Raises :class:`BackendUnavailable` when Redis does not answer (the unit stays spent).
        """
        try:
            async with asyncio.timeout(self._timeout):
                given = await self._refund(keys=[quota_key(self._storage_id(tenant))], args=[decision.window])
        except _ERRORS as exc:
            self._failed(exc)
            raise BackendUnavailable(str(exc)) from None
        return bool(given)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.HEARTBEAT_SECS)
            await self._beat()

    async def _beat(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                replicas = await self._heartbeat(keys=[REPLICAS_KEY], args=[self._id, self.PRESENCE_TTL_MS])
            async with asyncio.timeout(self._timeout):
                revision = cast(bytes, await self._client.get(REV_KEY) or b"")  # no decode_responses
            if self._cluster is not None:
                async with asyncio.timeout(self._timeout):
                    await self._cluster.reachable()
            now = time.monotonic()
            if revision != self._revision or now - self._reloaded_at >= self.FULL_RELOAD_SECS:
                async with asyncio.timeout(self._timeout):
                    await self._reload_map()
                self._revision, self._reloaded_at = revision, now
        except _ERRORS as exc:
            self._failed(exc)
            if self._cluster is not None:
                with contextlib.suppress(*_ERRORS):
                    async with asyncio.timeout(self._timeout):
                        await self._cluster.rediscover()
            return
        self.replicas = int(replicas)
        if self._state is not True:
            self._state = True
            log.info("quota backend available: enforcing through Redis (%d replicas)", self.replicas)

    async def _reload_map(self) -> None:
        # One call per hash: on a Redis Cluster they lie in different slots (on a single Redis this
        # costs one more round trip, at most once a second).
        raw = cast(dict[bytes, bytes], await self._client.hgetall(MAP_KEY))  # no decode_responses
        keys = []
        if self._key_ring is not None:
            keys.append(cast(dict[bytes, bytes], await self._client.hgetall(KEYS_KEY)))
        entries: dict[str, TenantEntry] = {}
        bad: dict[str, str] = {}
        for field, value in raw.items():
            tenant = field.decode("utf-8", "replace")
            try:
                entries[tenant] = decode_entry(value)
            except ValueError as exc:
                bad[self._storage_id(tenant)] = str(exc)
        if self._key_ring is not None:
            skipped = self._key_ring.replace(
                {
                    field.decode("latin-1"): value.decode("utf-8", "replace")
                    for field, value in keys[0].items()
                }
            )
            bad.update({f"{KEYS_KEY}:{field}": "not an HMAC-SHA256 hex digest" for field in skipped})
        if bad != self._bad_entries:
            for tenant, problem in bad.items():
                log.warning("live map entry %r ignored: %s", tenant, problem)
            self._bad_entries = bad
        self._policy.replace_live_map(entries)

    def _failed(self, exc: BaseException) -> None:
        self._on_error()
        if self._state is not False:
            self._state = False
            log.warning("quota backend unavailable (%s): applying QUOTA_FAILURE_MODE", type(exc).__name__)
