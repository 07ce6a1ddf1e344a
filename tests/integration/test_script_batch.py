"""Script calls batched behind a round trip, against a real redis-server: every call runs once and
gets its own reply, in order; a caller that gives up does not disturb the others; a Redis that lost
its scripts gets them loaded again."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from llm_gateway.adapters.script_batch import ScriptBatch
from tests.support import RedisServer

COUNT = "return redis.call('INCR', KEYS[1])"


def test_calls_made_during_a_round_trip_share_the_next_and_each_get_their_own_reply(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> tuple[int, list[int], bool, int]:
        client = Redis.from_url(redis_server.url)
        batch = ScriptBatch(client, COUNT, timeout=5)
        first = asyncio.ensure_future(batch.call(["n"], []))
        await asyncio.sleep(0)  # the first call is under way: the next ones queue
        queued = [batch.call(["n"], []) for _ in range(49)]
        all_queued = all(isinstance(future, asyncio.Future) for future in queued)
        queued[6].cancel()  # a caller that gave up
        replies = await asyncio.gather(*(f for i, f in enumerate(queued) if i != 6))
        later = await batch.call(["n"], [])  # nothing under way: sent alone
        await client.aclose()
        return await first, replies, all_queued, later

    first, replies, all_queued, later = asyncio.run(scenario())
    assert first == 1 and all_queued
    assert replies == [n for n in range(2, 51) if n != 8]  # in order; the cancelled call still ran once
    assert later == 51


def test_a_redis_that_lost_its_scripts_gets_them_loaded_again(redis_server: RedisServer) -> None:
    async def scenario() -> list[int]:
        client = Redis.from_url(redis_server.url)
        batch = ScriptBatch(client, COUNT, timeout=5)
        first = await batch.call(["m"], [])
        await client.script_flush()
        head = asyncio.ensure_future(batch.call(["m"], []))  # alone: a plain script call
        await asyncio.sleep(0)
        rest = await asyncio.gather(*(batch.call(["m"], []) for _ in range(3)))  # queued: a pipeline
        await client.aclose()
        return [first, await head, *rest]

    assert asyncio.run(scenario()) == [1, 2, 3, 4, 5]
