"""A caller's rate limits, per key and (optionally) per user: requests a minute, open tasks.

Requests per minute are counted in Redis, one counter per key and one per user, in fixed
windows of one clock minute by the Redis server's clock, so every gateway process counts in the
same windows whatever its own clock says. One Lua script looks at the key's and the user's
counters together and counts the request in both only if neither is at its limit: a request
refused by the user's limit uses none of the key's allowance, and the other way round. If Redis
cannot be reached the request is let through (fail open, logged and counted in
``gateway_rate_limit_fail_open_total``): rate limits protect capacity, not money, and billing
never depends on Redis.

Tasks open at once are counted in PostgreSQL, in the transaction that holds a new task's price
(``hold_new_capped_task``, migrations/0007). A transaction-level advisory lock per capped key,
then per capped user, serialises their count and the insert of the task row until commit, so
concurrent submits through any number of processes accept exactly the cap. Nothing lives
outside that transaction: a process that dies mid-submit holds no lock, and its SUBMITTING task
keeps its slot only until the hold sweeper resolves it; a task frees its slot with the very
update that ends it, whichever process or poller makes it. The open-task count is the task
rows, the one record, so it cannot drift from them as a Redis counter of slots could, and the
submit path never needs Redis for it. Keys and users without a cap take the plain hold, with no
lock and no count. MODAL confirmations and uploads are not capped: the MODAL task already holds
its slot, and an upload ends within its own request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog

from gateway import metrics
from gateway.domain import Principal
from gateway.errors import RateLimited
from gateway.storage.redis_keys import RedisKeys

log = structlog.get_logger(__name__)

WINDOW_MS = 60_000
OPEN_TASKS_RETRY_AFTER_S = 5

# Values of the ``limit`` label of gateway_rate_limited_total: which limit refused a request.
KEY_REQUESTS_PER_MINUTE = "key_requests_per_minute"
USER_REQUESTS_PER_MINUTE = "user_requests_per_minute"
KEY_OPEN_TASKS = "key_open_tasks"
USER_OPEN_TASKS = "user_open_tasks"

# KEYS: one counter per limit (the key's, then the user's); ARGV: their limits, then the window
# in ms, then now in epoch ms ('' for the Redis server's clock). Answers {refused, ms left in the
# window, count per counter}: refused is 0 when the request was counted (in every counter), else
# the index of the counter at its limit (and the request was counted in none). A counter lives
# until its window ends.
_COUNT_REQUEST = """
local window_ms = tonumber(ARGV[#ARGV - 1])
local now_ms = tonumber(ARGV[#ARGV])
if not now_ms then
    local now = redis.call('TIME')
    now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
local left_ms = window_ms - now_ms % window_ms
local counts = {}
for i, key in ipairs(KEYS) do
    counts[i] = tonumber(redis.call('GET', key) or '0')
    if counts[i] >= tonumber(ARGV[i]) then
        return {i, left_ms}
    end
end
local answer = {0, left_ms}
for i, key in ipairs(KEYS) do
    if counts[i] == 0 then
        redis.call('SET', key, 1, 'PX', left_ms)
    else
        redis.call('INCR', key)
    end
    answer[i + 2] = counts[i] + 1
end
return answer
"""


@dataclass(frozen=True, slots=True)
class RequestRate:
    """Where a caller stands in this minute under the tighter of its key's and user's limits:
    the one with the fewest requests left (the lower limit on a tie)."""

    limit: int
    remaining: int
    reset_s: int  # seconds until the window ends and the count starts again, at least 1

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_s),
        }


class RateLimits:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: RedisKeys,
        *,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        """``clock_ms``: the time (epoch ms) the windows follow; None, the Redis server's,
        which every process shares."""
        self._keys = keys
        self._clock_ms = clock_ms
        self._count_request = redis.register_script(_COUNT_REQUEST)

    async def count_request(self, principal: Principal) -> RequestRate | None:
        """Count one request against the key's and the user's per-minute limits, in both or in
        neither. None when neither has a limit, or Redis cannot be reached (not limited then);
        RateLimited (429/23, with Retry-After and the X-RateLimit headers) past either."""
        if principal.requests_per_minute is None and principal.user_requests_per_minute is None:
            return None  # the common case: no key names built, no Redis call
        limits = [
            (label, key, limit)
            for label, key, limit in (
                (
                    KEY_REQUESTS_PER_MINUTE,
                    self._keys.key_requests(principal.user_id, principal.key_id),
                    principal.requests_per_minute,
                ),
                (
                    USER_REQUESTS_PER_MINUTE,
                    self._keys.user_requests(principal.user_id),
                    principal.user_requests_per_minute,
                ),
            )
            if limit is not None
        ]
        try:
            answer = await self._count_request(
                keys=[key for _, key, _ in limits],
                args=[
                    *(limit for _, _, limit in limits),
                    WINDOW_MS,
                    self._clock_ms() if self._clock_ms else "",
                ],
            )
        except (aioredis.RedisError, OSError) as exc:
            metrics.RATE_LIMIT_FAIL_OPEN.inc()
            log.warning("rate_limit_unavailable", error=str(exc))
            return None
        refused, left_ms, *counts = (int(value) for value in answer)
        reset_s = max(1, -(-left_ms // 1000))
        if refused:
            label, _, limit = limits[refused - 1]
            metrics.RATE_LIMITED.labels(label).inc()
            whose = "key" if label == KEY_REQUESTS_PER_MINUTE else "user"
            rate = RequestRate(limit, 0, reset_s)
            raise RateLimited(
                f"more than {limit} requests a minute for this {whose}",
                retry_after_s=reset_s,
                headers=rate.headers(),
            )
        return min(
            (
                RequestRate(limit, limit - count, reset_s)
                for (_, _, limit), count in zip(limits, counts, strict=True)
            ),
            key=lambda rate: (rate.remaining, rate.limit),
        )


def open_tasks_refused(label: str, cap: int) -> RateLimited:
    """The 429/23 for a submit refused by a cap on open tasks (``KEY_OPEN_TASKS`` or
    ``USER_OPEN_TASKS``), counted in gateway_rate_limited_total."""
    metrics.RATE_LIMITED.labels(label).inc()
    whose = "key" if label == KEY_OPEN_TASKS else "user"
    return RateLimited(
        f"this {whose} already has {cap} unfinished tasks", retry_after_s=OPEN_TASKS_RETRY_AFTER_S
    )
