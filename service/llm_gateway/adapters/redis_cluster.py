"""A Redis Cluster through redis-py's own :class:`~redis.asyncio.cluster.RedisCluster` (``REDIS_CLUSTER``).

redis-py routes each command to the master of its key's slot, follows ``MOVED`` and ``ASK``, loads a
script again where a node answers ``NOSCRIPT``, and reads the cluster's map again after a connection
error or a ``CLUSTERDOWN`` (a failover). What this module adds is the bounds the store keeps on a
single Redis:

- no retries: redis-py would otherwise retry a failed call three times with backoff, where the
  store wants a dead master to cost a request one failed call, then ``QUOTA_FAILURE_MODE``;
- at most ``max_connections`` calls at once, the others waiting their turn (inside the caller's
  timeout): redis-py's cluster pool raises instead of waiting when a node's connections are all in
  use, which would make a burst of requests look like an outage;
- :meth:`ClusterClient.rediscover`. redis-py forgets the map after an error it sees itself, but not
  after a call that the caller's ``asyncio.timeout`` cut short (a master that hangs, or a host gone
  without a reset): it would keep sending that master's slots to it after its replica took over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.typing import EncodableT

__all__ = ["ClusterClient", "ClusterScript"]

_Arg = str | int | float | bytes


class ClusterClient(RedisCluster):
    """A :class:`RedisCluster` whose calls wait for one of ``max_calls`` turns; see the module."""

    def __init__(self, *args: Any, max_calls: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns = asyncio.Semaphore(max_calls)

    @classmethod
    def connect(cls, url: str, *, max_connections: int) -> ClusterClient:
        """A client of the cluster that the node at ``url`` belongs to (the others are discovered).

        Nothing is opened until the first call. Each node gets twice ``max_connections``: at most
        ``max_connections`` are ever in use, and a connection redis-py is still closing after an error
        must not make the next call fail for want of one.
        """
        return cast(
            ClusterClient,
            cls.from_url(
                url,
                max_calls=max_connections,
                max_connections=2 * max_connections,
                retry=Retry(NoBackoff(), 0),
                # Bounded as a whole by the caller's asyncio.timeout, as on a single Redis.
                socket_timeout=None,
                socket_connect_timeout=None,
            ),
        )

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        async with self._turns:
            return await super().execute_command(*args, **kwargs)

    async def rediscover(self) -> None:
        """Close every connection and forget the cluster's map: the next call reads it again."""
        await self.aclose()

    async def reachable(self) -> None:
        """``PING`` every master of the map in hand; raises when one does not answer."""
        await self.ping(target_nodes=RedisCluster.PRIMARIES)


class ClusterScript:
    """``await script.call(keys, args)`` on the master of ``keys``' slot (all in one slot): what
    :class:`~llm_gateway.adapters.redis_script.ScriptConnection` does on a single Redis.

    ``EVALSHA``, with the script loaded again (on every master) where it is missing.
    """

    def __init__(self, client: ClusterClient, script: str) -> None:
        self._script = client.register_script(script)

    async def call(self, keys: Sequence[_Arg], args: Sequence[_Arg]) -> Any:
        return await self._script(keys=cast(Sequence[str | bytes], keys), args=args)

    def close(self) -> None:
        """Nothing of its own to close: the client's connections are the store's."""
