"""Backend failures as kopf errors: a Redis or Kubernetes API call that fails is retried by kopf after
:data:`RETRY_DELAY_SECS`, and counted in the operator's ``tenantquota_errors`` by backend."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import kopf
from redis.exceptions import RedisClusterException, RedisError

__all__ = ["RETRY_DELAY_SECS", "retried"]

RETRY_DELAY_SECS = 5


@contextlib.contextmanager
def retried(
    memo: kopf.Memo,
    backend: str,
    # A Redis Cluster's client raises RedisClusterException (no RedisError) when no node answers.
    errors: type[Exception] | tuple[type[Exception], ...] = (RedisError, RedisClusterException),
) -> Iterator[None]:
    """Turn ``errors`` into a kopf temporary error (retried after a delay), counted by ``backend``."""
    try:
        yield
    except errors as error:
        memo.metrics.errors.labels(backend).inc()
        raise kopf.TemporaryError(f"{backend}: {error}", delay=RETRY_DELAY_SECS) from None
