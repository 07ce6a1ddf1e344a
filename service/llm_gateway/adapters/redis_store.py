"""Shared quota state in Redis: one ``EVALSHA`` per request (and a share of one to settle it); a
heartbeat does everything else.

Per request, :meth:`RedisStore.admit` runs :data:`~llm_gateway.core.quota.ADMIT_SCRIPT` (quota, rate
limit and token reservation together) over a pipelined connection of its own (see
:class:`~llm_gateway.adapters.redis_script.ScriptConnection`); when the request ends,
:meth:`RedisStore.settle` corrects its tokens to what it cost and, when it failed before the client
got anything, gives its unit back: the settlements of one event-loop turn go together, in one call
of :data:`~llm_gateway.core.quota.SETTLE_SCRIPT` on a second such connection (they are off the
request's critical path, and one call for many costs the replica less CPU than one each). Once a
second a heartbeat script refreshes this replica's presence in the ``gateway_replicas`` sorted set
(so every replica knows how many share the limits), reads the live map's revision, and reloads the
map when it moved. The heartbeat doubles as the recovery probe: while Redis is unreachable, requests
do not touch it at all (:attr:`available` is False), and the first successful heartbeat brings
enforcement back. State changes are logged once, not per request.

On a Redis Cluster (``cluster=True``) the same calls go through redis-py's cluster client
(:mod:`llm_gateway.adapters.redis_cluster`): a request's keys share its tenant's slot, while the
heartbeat's and the map's keys lie in slots of their own, so no call spans two slots; settlements go
one per call there. The store is available only while every master answers: a failed call makes the
whole store unavailable, and the heartbeat also pings every master, so enforcement comes back once a
dead master's replica has taken its slots over, not at every heartbeat that happened to miss the
dead master.

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
from llm_gateway.core.policy.published import POLICY_MAP_KEY
from llm_gateway.core.quota import (
    ADMIT_SCRIPT,
    SETTLE_SCRIPT,
    Decision,
    Limits,
    Outcome,
    TokenState,
    quota_key,
    rate_key,
    rate_limited,
    token_key,
)
from llm_gateway.core.quota_map import MAP_KEY, REV_KEY, TenantEntry, decode_entry
from llm_gateway.core.quota_policy import QuotaPolicy
from llm_gateway.core.token_budget import Reservation, TokenLimits

__all__ = ["REPLICAS_KEY", "BackendUnavailable", "RedisStore"]

log = logging.getLogger(__name__)

REPLICAS_KEY = "gateway_replicas"
_OUTCOMES = (Outcome.ALLOWED, Outcome.RATE_LIMITED, Outcome.QUOTA_EXCEEDED, Outcome.TOKENS_EXCEEDED)
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
    reloaded together with the quota map; with ``on_policies``, so are the published tenant policies
    (the ``policy_map`` hash, see :mod:`llm_gateway.core.policy.published`), handed to it whole
    after each reload. With ``cluster``, ``url`` names one node of a Redis
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
        on_policies: Callable[[dict[str, bytes]], None] | None = None,
        max_connections: int = 32,
        cluster: bool = False,
    ) -> None:
        self._client: Redis | ClusterClient
        self._admit: ScriptRunner
        self._cluster: ClusterClient | None = None
        if cluster:
            self._client = self._cluster = ClusterClient.connect(url, max_connections=max_connections)
            self._admit = ClusterScript(self._cluster, ADMIT_SCRIPT)
            settle: ScriptRunner = ClusterScript(self._cluster, SETTLE_SCRIPT)
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
            settle = ScriptConnection(url, SETTLE_SCRIPT)
        self._timeout = timeout
        self._settlements = _Settlements(settle, timeout, max_batch=1 if cluster else _Settlements.MAX_BATCH)
        self._heartbeat = self._client.register_script(HEARTBEAT_SCRIPT)
        self._policy = policy
        self._on_error = on_error
        self._storage_id = storage_id
        self._key_ring = key_ring
        self._on_policies = on_policies
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
        self._settlements.close()
        await self._client.aclose()

    async def admit(
        self, tenant: str, key: str, limits: Limits, tokens: tuple[TokenLimits, Reservation] | None = None
    ) -> Decision:
        """Evaluate quota, rate limit and (with ``tokens``: the tenant's budget and what the request
        reserves) token budget for one request, in one round trip."""
        tenant_id = self._storage_id(tenant)
        keys = [quota_key(tenant_id), rate_key(tenant_id, self._storage_id(key))]
        args: list[int | float] = [limits.quota, limits.window_secs * 1000, 1000 / limits.rps, limits.burst]
        if tokens is not None:
            keys.append(token_key(tenant_id))
            args.extend((*tokens[0].script_args(), tokens[1].input, tokens[1].output))
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self._admit.call(keys, args)
        except _ERRORS as exc:
            self._failed(exc)
            raise BackendUnavailable(str(exc)) from None
        outcome, used, left_ms, retry_ms, window_end, used_in, used_out, tokens_left_ms, tokens_end, held = (
            reply
        )
        if _OUTCOMES[outcome] is Outcome.RATE_LIMITED:
            return rate_limited(limits, retry_ms / 1000)
        state = None
        retry_after = retry_ms / 1000
        if tokens is not None and outcome in (0, 3):
            state = TokenState(
                *tokens, used_in, used_out, tokens_left_ms / 1000, window=tokens_end, held=held
            )
            retry_after = state.retry_after() if outcome == 3 else 0.0
        return Decision(
            _OUTCOMES[outcome],
            limits.quota,
            max(limits.quota - used, 0),
            left_ms / 1000,
            retry_after_secs=retry_after,
            counted_in="redis" if outcome == 0 else None,
            window=window_end,
            tokens=state,
        )

    async def settle(
        self, tenant: str, decision: Decision, *, refund: bool, charged: Reservation | None
    ) -> bool:
        """End an admitted request: with ``refund``, give back the unit ``decision`` counted; with
        ``charged`` (its tenant has a token budget), correct the tokens it reserved to that. Each only
        in the window that counted it, if that is still the current one. True when the unit was
        given back.

        Raises :class:`BackendUnavailable` when Redis does not answer (the unit and the reservation
        stay spent).
        """
        tenant_id = self._storage_id(tenant)
        args: tuple[float, float, int, int, int] = (decision.window if refund else 0, 0, 0, 0, 0)
        tokens = decision.tokens
        if charged is not None and tokens is not None:
            reserved = tokens.reservation
            deltas = (charged.input - reserved.input, charged.output - reserved.output, reserved.total)
            args = (args[0], tokens.window, *deltas)
        try:  # bounded by the batch's own timeout, which fails every future it holds
            given = await self._settlements.add((quota_key(tenant_id), token_key(tenant_id)), args)
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
            policies = None
            if revision != self._revision or now - self._reloaded_at >= self.FULL_RELOAD_SECS:
                async with asyncio.timeout(self._timeout):
                    policies = await self._reload_map()
                self._revision, self._reloaded_at = revision, now
        except _ERRORS as exc:
            self._failed(exc)
            if self._cluster is not None:
                with contextlib.suppress(*_ERRORS):
                    async with asyncio.timeout(self._timeout):
                        await self._cluster.rediscover()
            return
        self.replicas = int(replicas)
        if policies is not None and self._on_policies is not None:
            # Validating changed policies can take a while: in a thread (Cedar releases the GIL), and
            # outside the Redis timeout, which bounds Redis calls only.
            await asyncio.to_thread(self._on_policies, policies)
        if self._state is not True:
            self._state = True
            log.info("quota backend available: enforcing through Redis (%d replicas)", self.replicas)

    async def _reload_map(self) -> dict[str, bytes] | None:
        """Reload the live map (and the key map) into the policy and key ring; the published tenant
        policies, for ``on_policies`` (None without it)."""
        # One call per hash: on a Redis Cluster they lie in different slots (on a single Redis this
        # costs one more round trip, at most once a second).
        raw = cast(dict[bytes, bytes], await self._client.hgetall(MAP_KEY))  # no decode_responses
        keys = []
        if self._key_ring is not None:
            keys.append(cast(dict[bytes, bytes], await self._client.hgetall(KEYS_KEY)))
        policies = None
        if self._on_policies is not None:
            policies = cast(dict[bytes, bytes], await self._client.hgetall(POLICY_MAP_KEY))
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
        if policies is None:
            return None
        return {field.decode("utf-8", "replace"): value for field, value in policies.items()}

    def _failed(self, exc: BaseException) -> None:
        self._on_error()
        if self._state is not False:
            self._state = False
            log.warning("quota backend unavailable (%s): applying QUOTA_FAILURE_MODE", type(exc).__name__)


class _Settlements:
    """Settlements made in one event-loop turn, sent together in one call of the settlement script
    (at most ``max_batch`` a call: 1 on a Redis Cluster, where two tenants' keys lie in different
    slots), each caller's future answered with its own reply."""

    MAX_BATCH = 256

    def __init__(self, connection: ScriptRunner, timeout: float, *, max_batch: int) -> None:
        self._connection = connection
        self._timeout = timeout
        self._max_batch = max_batch
        self._keys: list[str] = []
        self._args: list[float] = []
        self._waiting: list[asyncio.Future[int]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def add(self, keys: tuple[str, str], args: tuple[float, float, int, int, int]) -> asyncio.Future[int]:
        """The future of one settlement's reply: 1 when its unit was given back, else 0."""
        loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._flush)
        future: asyncio.Future[int] = loop.create_future()
        self._keys.extend(keys)
        self._args.extend(args)
        self._waiting.append(future)
        if len(self._waiting) >= self._max_batch:
            self._flush()
        return future

    def _flush(self) -> None:
        if not self._waiting:
            return
        batch = (self._keys, self._args, self._waiting)
        self._keys, self._args, self._waiting = [], [], []
        task = asyncio.create_task(self._send(*batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, keys: list[str], args: list[float], waiting: list[asyncio.Future[int]]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                replies = await self._connection.call(keys, args)
        except Exception as exc:  # every caller sees what failed, as if it had called alone
            for future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, reply in zip(waiting, replies, strict=True):
            if not future.done():
                future.set_result(int(reply))

    def close(self) -> None:
        self._connection.close()
