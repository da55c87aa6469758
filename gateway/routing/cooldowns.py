"""Channel cooldowns: which channels rest, why, and until when, the same for every process.

A channel rests (is left out of new work) for ``cooldown_s`` after ``failures_to_cool`` failed
attempts in a row (a submit that failed or timed out, a poll that got no answer), after a
"no account" answer (code 3) to new work, or after HTTP 401/403 (a refused secret). An answer
that shows the channel alive (any other verdict) ends the streak. While a channel rests the
prober (``gateway.routing.probes``) asks it for a cheap answer: a good one ends the cooldown, a
failed one starts it again (see there for the no-account case).

The state lives in two Redis hashes (``RedisKeys.channel_cooldowns`` and ``channel_failures``)
written by every process; a failure is counted, and the channel cooled at the N-th, by one Lua
script, so two replicas failing at once count to N exactly once. A process rereads both hashes
at most once a second and takes them as the truth (so a cooldown a probe ended ends here within
a second); it also keeps the cooldowns it set itself, so it stops at once, and keeps doing so
while Redis is down. A success ends the streak when this process's view (at most a second old)
shows one, so the fast path of a healthy channel costs no Redis call.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from enum import Enum

import redis.asyncio as aioredis

from gateway.storage.redis_keys import RedisKeys

_REFRESH_S = 1.0
_EXPIRY_MARGIN_MS = 600_000  # longer than any rest beyond a cooldown (a failed probe's)

# KEYS: failures hash, cooldowns hash. ARGV: channel id, now (ms), streak lifetime (ms),
# failures to cool, cooldown entry to write, cooldown hash lifetime (ms).
# Answers the streak after this failure, 0 when this failure cooled the channel.
_COUNT_FAILURE = """
local count = 0
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
    local seen, last = string.match(raw, '^(%d+) (%d+)$')
    if seen and tonumber(ARGV[2]) - tonumber(last) <= tonumber(ARGV[3]) then
        count = tonumber(seen)
    end
end
count = count + 1
if count >= tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
    redis.call('PEXPIRE', KEYS[2], ARGV[6])
    return 0
end
redis.call('HSET', KEYS[1], ARGV[1], count .. ' ' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return count
"""


class CoolReason(Enum):
    FAILURES = "failures"  # failed attempts in a row, or failed probes
    NO_ACCOUNT = "no_account"  # code 3 to new work: the channel has no usable account
    AUTH_FAILED = "auth_failed"  # HTTP 401/403: the channel refused our secret


@dataclass(frozen=True, slots=True)
class Cooldown:
    until_ms: int
    reason: CoolReason


def _parse_cooldown(raw: str) -> Cooldown | None:
    until, _, reason = raw.partition(" ")
    try:
        return Cooldown(int(until), CoolReason(reason or CoolReason.FAILURES.value))
    except ValueError:
        return None


def _parse_streak(raw: str) -> int:
    count, _, _ = raw.partition(" ")
    return int(count) if count.isdigit() else 0


def _now_ms() -> int:
    return int(time.time() * 1000)


class Cooldowns:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: RedisKeys,
        cooldown_s: float,
        *,
        failures_to_cool: int = 3,
        failure_streak_ttl_s: float = 300.0,
    ) -> None:
        self._redis = redis
        self._cooldowns_key = keys.channel_cooldowns
        self._failures_key = keys.channel_failures
        self._cooldown_ms = int(cooldown_s * 1000)
        self._failures_to_cool = failures_to_cool
        self._streak_ttl_ms = int(failure_streak_ttl_s * 1000)
        self._count_failure = redis.register_script(_COUNT_FAILURE)
        self._cooldowns: dict[int, Cooldown] = {}
        self._own: dict[int, Cooldown] = {}  # set here, kept while Redis cannot be read
        self._own_at: dict[int, float] = {}  # when each was set (monotonic)
        self._streaks: set[int] = set()  # channels with a failure streak, as last seen
        self._read_at = float("-inf")

    async def cool(self, channel_id: int, reason: CoolReason, at_least_s: float = 0.0) -> None:
        """Rest the channel for one cooldown from now (or ``at_least_s``, if longer)."""
        rest_ms = max(self._cooldown_ms, int(at_least_s * 1000))
        cooldown = Cooldown(_now_ms() + rest_ms, reason)
        self._remember(channel_id, cooldown)
        with contextlib.suppress(aioredis.RedisError, OSError):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._cooldowns_key, str(channel_id), self._entry(cooldown))
                pipe.pexpire(self._cooldowns_key, rest_ms + _EXPIRY_MARGIN_MS)
                await pipe.execute()

    async def failed(self, channel_id: int) -> bool:
        """Count one failed attempt; True when it was the one that cooled the channel."""
        now_ms = _now_ms()
        cooldown = Cooldown(now_ms + self._cooldown_ms, CoolReason.FAILURES)
        self._streaks.add(channel_id)
        try:
            streak = await self._count_failure(
                keys=[self._failures_key, self._cooldowns_key],
                args=[
                    channel_id,
                    now_ms,
                    self._streak_ttl_ms,
                    self._failures_to_cool,
                    self._entry(cooldown),
                    self._cooldown_ms + _EXPIRY_MARGIN_MS,
                ],
            )
        except (aioredis.RedisError, OSError):
            return False
        if int(streak) != 0:
            return False
        self._streaks.discard(channel_id)
        self._remember(channel_id, cooldown)
        return True

    async def succeeded(self, channel_id: int) -> None:
        """The channel answered: its failure streak (if this process knows of one) ends."""
        if channel_id not in self._streaks:
            return
        self._streaks.discard(channel_id)
        with contextlib.suppress(aioredis.RedisError, OSError):
            await self._redis.hdel(self._failures_key, str(channel_id))

    async def end(self, channel_id: int) -> None:
        """End the channel's cooldown and failure streak, for every process."""
        self._own.pop(channel_id, None)
        self._own_at.pop(channel_id, None)
        self._cooldowns.pop(channel_id, None)
        self._streaks.discard(channel_id)
        with contextlib.suppress(aioredis.RedisError, OSError):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(self._cooldowns_key, str(channel_id))
                pipe.hdel(self._failures_key, str(channel_id))
                await pipe.execute()

    async def cooling(self) -> dict[int, Cooldown]:
        """The channels resting now, by id; the shared view is at most a second old."""
        if time.monotonic() - self._read_at > _REFRESH_S:
            self._read_at = time.monotonic()
            await self._refresh()
        now_ms = _now_ms()
        self._own = {cid: c for cid, c in self._own.items() if c.until_ms > now_ms}
        merged = {**self._cooldowns, **self._own}
        return {cid: c for cid, c in merged.items() if c.until_ms > now_ms}

    def _remember(self, channel_id: int, cooldown: Cooldown) -> None:
        self._own[channel_id] = self._cooldowns[channel_id] = cooldown
        self._own_at[channel_id] = time.monotonic()

    async def _refresh(self) -> None:
        started = time.monotonic()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._cooldowns_key)
                pipe.hgetall(self._failures_key)
                cooldowns, streaks = await pipe.execute()
        except (aioredis.RedisError, OSError):
            return
        shared = {int(cid): _parse_cooldown(raw.decode()) for cid, raw in cooldowns.items()}
        self._cooldowns = {cid: c for cid, c in shared.items() if c is not None}
        # A cooldown set here and ended elsewhere (a probe) is gone from Redis: it ends here too,
        # unless it was set after this read began.
        self._own = {
            cid: c
            for cid, c in self._own.items()
            if cid in self._cooldowns or self._own_at.get(cid, 0.0) >= started
        }
        self._streaks = {
            int(cid) for cid, raw in streaks.items() if _parse_streak(raw.decode()) > 0
        }

    @staticmethod
    def _entry(cooldown: Cooldown) -> str:
        return f"{cooldown.until_ms} {cooldown.reason.value}"
