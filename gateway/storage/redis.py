"""The Redis client. Key names and their lifetimes live in ``gateway.storage.redis_keys``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import redis.asyncio as aioredis
import structlog

log = structlog.get_logger(__name__)

RESUBSCRIBE_AFTER_S = 1.0


def create_redis(url: str) -> aioredis.Redis:
    """A client with a connection pool; bytes in and out, short socket timeouts."""
    return aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


async def follow(
    redis: aioredis.Redis,
    channel: str,
    take: Callable[[bytes], None],
    lost: Callable[[], None] = lambda: None,
) -> None:
    """Run until cancelled: ``take`` each message published on the pub/sub ``channel``. When the
    connection is lost, ``lost()`` (what was published meanwhile is missed) and subscribe again
    a moment later."""
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        take(message["data"])
        except (aioredis.RedisError, OSError) as exc:
            lost()
            log.warning("redis_subscription_lost", channel=channel, error=str(exc))
            await asyncio.sleep(RESUBSCRIBE_AFTER_S)
