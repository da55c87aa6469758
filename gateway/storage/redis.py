"""The Redis client. Key names and their lifetimes live in ``gateway.storage.redis_keys``."""

from __future__ import annotations

import redis.asyncio as aioredis


def create_redis(url: str) -> aioredis.Redis:
    """A client with a connection pool; bytes in and out, short socket timeouts."""
    return aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
