"""Script calls batched per event-loop turn, against a real redis-server: every call runs once and
gets its own reply, in order; a caller that gives up does not disturb the others; a Redis that lost
its scripts gets them loaded again."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from llm_gateway.adapters.script_batch import ScriptBatch
from tests.support import RedisServer

COUNT = "return redis.call('INCR', KEYS[1])"


def test_calls_of_one_turn_each_run_once_and_get_their_own_reply(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[list[int], int]:
        client = Redis.from_url(redis_server.url)
        batch = ScriptBatch(client, COUNT, timeout=5)
        futures = [batch.call(["n"], []) for _ in range(50)]  # all in this turn: one pipeline
        futures[7].cancel()  # a caller that gave up
        replies = await asyncio.gather(*(f for i, f in enumerate(futures) if i != 7))
        later = await batch.call(["n"], [])
        await client.aclose()
        return replies, later

    replies, later = asyncio.run(scenario())
    assert sorted(replies) == [n for n in range(1, 51) if n != 8]  # the cancelled call still ran once
    assert replies == sorted(replies)  # in the order they were made
    assert later == 51


def test_a_redis_that_lost_its_scripts_gets_them_loaded_again(redis_server: RedisServer) -> None:
    async def scenario() -> list[int]:
        client = Redis.from_url(redis_server.url)
        batch = ScriptBatch(client, COUNT, timeout=5)
        first = await batch.call(["m"], [])
        await client.script_flush()
        rest = await asyncio.gather(*(batch.call(["m"], []) for _ in range(3)))
        await client.aclose()
        return [first, *rest]

    assert asyncio.run(scenario()) == [1, 2, 3, 4]
