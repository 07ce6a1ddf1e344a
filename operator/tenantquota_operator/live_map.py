"""The operator's side of the live quota, key and policy maps in Redis (the contracts are
``llm_gateway.core.quota_map``, ``llm_gateway.core.api_keys`` and ``llm_gateway.core.policy.published``).

Every change writes the hash field and bumps the revision in one ``MULTI``, and only when the stored
value differs, so a resync that finds everything in place costs reads only and wakes no gateway.
The three hashes share the one revision: a gateway reloads them together when it moves.

On a Redis Cluster (``cluster=True``) the hashes and the revision lie in different slots, and no
``MULTI`` spans two slots: the hash is written first, then the revision bumped. A gateway that reads
the revision in between reloads at the next bump; a bump lost to a crash in between is healed by
the gateways' full reload every 30 s. The other order could wake the gateways before the change
is there to read, and they would not look again until that full reload.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster

from llm_gateway.core.api_keys import KEYS_KEY
from llm_gateway.core.policy.documents import PolicyDocument
from llm_gateway.core.policy.published import POLICY_MAP_KEY, encode_policy
from llm_gateway.core.quota import quota_key, token_key
from llm_gateway.core.quota_map import MAP_KEY, REV_KEY, TenantEntry, encode_entry

__all__ = ["LiveMap", "TokenUsage", "Usage"]


@dataclass(frozen=True, slots=True)
class Usage:
    """A tenant's current window: requests counted, and when the window ends (epoch seconds)."""

    used: int
    reset_at: float | None


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """A tenant's current token window: tokens reserved and charged, and when it ends (epoch seconds)."""

    input: int
    output: int
    reset_at: float | None


class LiveMap:
    """Writes tenants' entries; reads what the gateways counted."""

    def __init__(
        self, url: str, *, storage_id: Callable[[str], str], timeout: float = 2.0, cluster: bool = False
    ) -> None:
        """``cluster``: ``url`` names one node of a Redis Cluster (the others are discovered)."""
        client = RedisCluster if cluster else redis.Redis
        self._redis = client.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._cluster = cluster
        self._storage_id = storage_id  # as the gateways name tenants in Redis keys (PRIVACY_MODE)

    async def close(self) -> None:
        await self._redis.aclose()

    async def put(self, tenant: str, entry: TenantEntry) -> bool:
        """Store ``entry`` for ``tenant``; True when it changed anything."""
        return await self._put(MAP_KEY, tenant, encode_entry(entry))

    async def remove(self, *tenants: str) -> bool:
        """Drop ``tenants``' entries; True when any existed."""
        return await self._remove(MAP_KEY, *tenants)

    async def tenants(self) -> set[str]:
        """Every tenant the map holds."""
        return await self._fields(MAP_KEY)

    async def put_policy(self, document: PolicyDocument) -> bool:
        """Publish ``document`` (validated already) under its source, a TenantPolicy's
        ``namespace/name``; True when it changed anything."""
        return await self._put(POLICY_MAP_KEY, document.source, encode_policy(document))

    async def remove_policies(self, *sources: str) -> bool:
        """Withdraw the documents published under ``sources``; True when any existed."""
        return await self._remove(POLICY_MAP_KEY, *sources)

    async def policy_sources(self) -> set[str]:
        """The source of every published document."""
        return await self._fields(POLICY_MAP_KEY)

    async def _put(self, key: str, field: str, value: bytes) -> bool:
        if await self._redis.hget(key, field) == value:
            return False
        await self._changed(("HSET", key, field, value))
        return True

    async def _remove(self, key: str, *fields: str) -> bool:
        # Only fields that exist: removing nothing must not bump the revision (an invalid TenantPolicy
        # is withdrawn again at every resync).
        if not fields:
            return False
        values = await self._redis.hmget(key, fields)
        present = [field for field, value in zip(fields, values, strict=True) if value is not None]
        if not present:
            return False
        await self._changed(("HDEL", key, *present))
        return True

    async def _fields(self, key: str) -> set[str]:
        fields = await self._redis.hkeys(key)
        return {field.decode() if isinstance(field, bytes) else field for field in fields}

    async def put_keys(self, tenant: str, digests: set[str]) -> bool:
        """Make ``digests`` exactly ``tenant``'s keys in the key map; True when it changed anything."""
        current = await self._key_map()
        mine = {field for field, owner in current.items() if owner == tenant}
        stale = mine - digests
        added = digests - mine
        if not stale and not added:
            return False
        changes: list[tuple[str | bytes, ...]] = []
        if stale:
            changes.append(("HDEL", KEYS_KEY, *stale))
        if added:
            changes.append(("HSET", KEYS_KEY, *(part for field in added for part in (field, tenant))))
        await self._changed(*changes)
        return True

    async def remove_keys_of_others(self, tenants: set[str]) -> bool:
        """Drop the keys of every tenant not in ``tenants``; True when any existed."""
        current = await self._key_map()
        stray = [field for field, owner in current.items() if owner not in tenants]
        if not stray:
            return False
        await self._changed(("HDEL", KEYS_KEY, *stray))
        return True

    async def _changed(self, *commands: tuple[str | bytes, ...]) -> list[Any]:
        """Run ``commands`` (writes to one hash), then bump the revision; their replies.

        In one ``MULTI`` on a single Redis; on a Redis Cluster the writes first, the bump after (see
        the module).
        """
        if self._cluster:
            replies = [await self._redis.execute_command(*command) for command in commands]
            await self._redis.incr(REV_KEY)
            return replies
        async with self._redis.pipeline(transaction=True) as tx:
            for command in commands:
                tx.execute_command(*command)
            tx.incr(REV_KEY)
            *replies, _ = await tx.execute()
        return replies

    async def _key_map(self) -> dict[str, str]:
        raw: dict[bytes, bytes] = await self._redis.hgetall(KEYS_KEY)  # type: ignore[assignment]  # bytes: no decode_responses
        return {field.decode(): owner.decode() for field, owner in raw.items()}

    async def usage(self, tenant: str) -> Usage:
        """Requests counted in ``tenant``'s current window (0 and no reset when none was counted)."""
        key = quota_key(self._storage_id(tenant))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            used, ttl_ms = await pipe.execute()
        if used is None:
            return Usage(0, None)
        return Usage(int(used), time.time() + ttl_ms / 1000 if ttl_ms > 0 else None)

    async def token_usage(self, tenant: str) -> TokenUsage:
        """Tokens reserved and charged in ``tenant``'s current token window (0 and no reset when none).

        One key, so one slot: as fit for a Redis Cluster as for a single Redis.
        """
        key = token_key(self._storage_id(tenant))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(key, ["input", "output"])
            pipe.pttl(key)
            (used_input, used_output), ttl_ms = await pipe.execute()
        if used_input is None and used_output is None:
            return TokenUsage(0, 0, None)
        reset_at = time.time() + ttl_ms / 1000 if ttl_ms > 0 else None
        return TokenUsage(int(used_input or 0), int(used_output or 0), reset_at)
