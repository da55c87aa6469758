"""Requests and server errors by minute, for the console's overview of the last hour.

Each process counts in memory (the request path adds no round trip) and adds its counts to
per-minute Redis counters every few seconds, so the figures cover every worker and replica.
Counts of the last few seconds of a process that dies are lost; the overview is a glance, not a
record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog

from gateway.storage.redis_keys import RedisKeys

log = structlog.get_logger(__name__)

FLUSH_EVERY_S = 5.0
KEEP_S = 2 * 3600

_counts: Counter[tuple[int, str]] = Counter()  # (minute, "requests" | "errors") -> count


def count(status: int) -> None:
    """One answered request (``status``: its HTTP status)."""
    minute = int(time.time() // 60)
    _counts[minute, "requests"] += 1
    if status >= 500:
        _counts[minute, "errors"] += 1


async def flush(redis: aioredis.Redis, keys: RedisKeys) -> None:
    """Add what was counted here since the last flush to the shared counters."""
    if not _counts:
        return
    taken = dict(_counts)
    _counts.clear()
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for (minute, kind), n in taken.items():
                pipe.incrby(keys.activity(kind, minute), n)
                pipe.expire(keys.activity(kind, minute), KEEP_S)
            await pipe.execute()
    except (aioredis.RedisError, OSError) as exc:
        _counts.update(taken)  # tried again at the next flush
        log.warning("activity_flush_failed", error=str(exc))


async def run(redis: aioredis.Redis, keys: RedisKeys) -> None:
    """Flush every few seconds until cancelled, and once more then."""
    try:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await flush(redis, keys)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(flush(redis, keys))


@dataclass(frozen=True, slots=True)
class LastHour:
    requests: int
    errors: int  # answered 5xx


async def last_hour(redis: aioredis.Redis, keys: RedisKeys) -> LastHour:
    now = int(time.time() // 60)
    minutes = range(now - 59, now + 1)
    totals = []
    for kind in ("requests", "errors"):
        values = await redis.mget([keys.activity(kind, m) for m in minutes])
        totals.append(sum(int(v) for v in values if v is not None))
    return LastHour(*totals)
