"""Per-key limits on how much a caller may do: requests per minute and tasks open at once.

Requests per minute are counted in Redis, one counter per key and clock minute, incremented and
checked by one Lua script, so every process shares the same count. If Redis cannot be reached the
request is let through (fail open): rate limits protect capacity, not money, and billing never
depends on Redis. Open tasks are counted in PostgreSQL at submit time.
"""

from __future__ import annotations

import time

import asyncpg
import redis.asyncio as aioredis
import structlog

from gateway import metrics
from gateway.domain import Principal
from gateway.errors import RateLimited
from gateway.storage import tasks as task_store
from gateway.storage.redis_keys import RedisKeys

log = structlog.get_logger(__name__)

_WINDOW_S = 60

# KEYS[1] counter; ARGV[1] limit, ARGV[2] window ms. Returns the count after this request.
_COUNT_REQUEST = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return count
"""

OPEN_TASKS_RETRY_AFTER_S = 5


class KeyLimits:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, keys: RedisKeys) -> None:
        self._pool = pool
        self._keys = keys
        self._count_request = redis.register_script(_COUNT_REQUEST)

    async def count_request(self, principal: Principal) -> None:
        """Count one request against the key's per-minute limit; RateLimited (429/23) past it."""
        limit = principal.requests_per_minute
        if limit is None:
            return
        now = time.time()
        window = int(now // _WINDOW_S)
        try:
            count = await self._count_request(
                keys=[self._keys.requests_in_minute(principal.key_id, window)],
                args=[limit, _WINDOW_S * 1000],
            )
        except (aioredis.RedisError, OSError) as exc:
            log.warning("rate_limit_unavailable", error=str(exc))
            return
        if int(count) > limit:
            metrics.RATE_LIMITED.labels("requests_per_minute").inc()
            retry_after_s = max(1, int((window + 1) * _WINDOW_S - now + 0.999))
            raise RateLimited(
                f"more than {limit} requests a minute with this key", retry_after_s=retry_after_s
            )

    async def check_open_tasks(self, principal: Principal) -> None:
        """RateLimited (429/23) when the key already has its maximum of unfinished tasks."""
        limit = principal.max_open_tasks
        if limit is None:
            return
        if await task_store.count_open_tasks(self._pool, principal.key_id) >= limit:
            metrics.RATE_LIMITED.labels("open_tasks").inc()
            raise RateLimited(
                f"this key already has {limit} unfinished tasks",
                retry_after_s=OPEN_TASKS_RETRY_AFTER_S,
            )
