"""Answers of ended tasks shared between processes over Redis: every listener keeps them, a
message that is not a list of answers changes nothing and stops no listener, and sharing while
Redis is away fails no caller."""

from __future__ import annotations

import asyncio
import time

import msgspec
import redis.asyncio as aioredis

from gateway.storage.redis import create_redis
from gateway.storage.redis_keys import RedisKeys
from gateway.tasks.ended import EndedAnswers
from tests.support import subscribed, until

BODY = b'{"id":"1","status":"SUCCESS"}'


async def test_every_listener_keeps_what_is_shared_and_bad_messages_change_nothing(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    channel = RedisKeys(redis_prefix).ended_answers_channel
    here, there = (EndedAnswers(100_000, redis_client, channel) for _ in range(2))
    listeners = [asyncio.create_task(answers.listen()) for answers in (here, there)]
    try:
        await subscribed(redis_client, channel, 2)
        for bad in (b"\xc1 not msgpack", msgspec.msgpack.encode([[1, "seven", 2.0, BODY]])):
            await redis_client.publish(channel, bad)
        good_until = time.time() + 60
        await here.share([(1, 7, good_until, BODY), (2, 8, good_until, b"{}")])
        await until(lambda: len(here) == len(there) == 2, "a listener missed the answers")
        assert [answers.get(1, 7, time.time()) for answers in (here, there)] == [BODY, BODY]
        assert there.get(1, 8, time.time()) is None  # only to the task's own user
        assert there.get(1, 7, good_until + 1) is None  # and not past its deadline
    finally:
        for listener in listeners:
            listener.cancel()


async def test_sharing_while_redis_is_away_fails_no_caller() -> None:
    away = create_redis("redis://127.0.0.1:1/0")
    try:
        answers = EndedAnswers(100_000, away, "tasks:ended")
        await answers.share([(1, 7, time.time() + 60, BODY)])
        assert len(answers) == 0
    finally:
        await away.aclose()
    unshared = EndedAnswers(0, None)
    assert not unshared.shared
    await asyncio.wait_for(unshared.listen(), 1)  # nothing to listen for: returns at once
