"""Channel cooldowns: a channel that answered "no account" or refused our secret is left out of
new work for a while, in every process.

The cooldowns live in one Redis hash (channel id -> until, epoch ms), read at most once a second
per process; a process also remembers the ones it set itself, so it stops at once even if Redis is
down. The first submit after a cooldown ends is the probe: it goes through when the channel works.
"""

from __future__ import annotations

import contextlib
import time

import redis.asyncio as aioredis

from gateway.storage.redis_keys import RedisKeys

_REFRESH_S = 1.0


class Cooldowns:
    def __init__(self, redis: aioredis.Redis, keys: RedisKeys, cooldown_s: float) -> None:
        self._redis = redis
        self._key = keys.channel_cooldowns
        self._cooldown_s = cooldown_s
        self._until_ms: dict[int, int] = {}
        self._read_at = float("-inf")

    async def cool(self, channel_id: int) -> None:
        until_ms = int((time.time() + self._cooldown_s) * 1000)
        self._until_ms[channel_id] = until_ms
        with contextlib.suppress(aioredis.RedisError, OSError):
            await self._redis.hset(self._key, str(channel_id), str(until_ms))

    async def cooling(self) -> set[int]:
        """Ids of the channels in cooldown now."""
        if time.monotonic() - self._read_at > _REFRESH_S:
            self._read_at = time.monotonic()
            with contextlib.suppress(aioredis.RedisError, OSError):
                shared = await self._redis.hgetall(self._key)
                for channel_id, until_ms in shared.items():
                    merged = max(int(until_ms), self._until_ms.get(int(channel_id), 0))
                    self._until_ms[int(channel_id)] = merged
        now_ms = time.time() * 1000
        return {channel_id for channel_id, until in self._until_ms.items() if until > now_ms}
