"""Channel cooldowns: which channels rest, why, and until when, the same for every process.

A channel rests (is left out of new work) for ``cooldown_s`` after ``failures_to_cool`` failed
attempts in a row (a submit that failed or timed out, a poll that got no answer), after a
"no account" answer (code 3) to new work, or after HTTP 401/403 (a refused secret). An answer
that shows the channel alive (any other verdict of a submit, an answered poll) ends the streak.

A streak's reason says what a probe (``gateway.routing.probes``) can vouch for. While every
failure in it was the channel being unreachable (no connection, or the connection dropped
before an answer) it is ``UNREACHABLE``, and a good probe ends the cooldown it starts; once
one failure was the channel answering with a failure or not answering in time after the
request was sent, it is ``FAILURES``, which a probe cannot see: that cooldown runs out.

The state lives in two Redis hashes (``RedisKeys.channel_cooldowns`` and ``channel_failures``)
written by every process; a failure is counted, and the channel cooled at the N-th, by one Lua
script, so two replicas failing at once count to N exactly once. A process rereads both hashes
at most once a second and takes them as the truth (so a cooldown a probe ended ends here within
a second); it also keeps the cooldowns it set itself, so it stops at once, and keeps doing so
while Redis is down. While Redis cannot be reached, streaks are counted in this process alone,
and the N-th failure rests the channel here. A success ends the streak in Redis when this
process's view shows one or is more than a second old, so the fast path of a healthy channel
(a submit routed on a fresh view) costs no Redis call.
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
# failures to cool, this failure's reason, end of the cooldown (ms), cooldown hash lifetime (ms).
# Answers {the streak after this failure (0 when this failure cooled the channel), its reason}.
_COUNT_FAILURE = """
local count = 0
local reason = ARGV[5]
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
    local seen, last, was = string.match(raw, '^(%d+) (%d+) (%a+)$')
    if seen and tonumber(ARGV[2]) - tonumber(last) <= tonumber(ARGV[3]) then
        count = tonumber(seen)
        if was == 'failures' then
            reason = 'failures'
        end
    end
end
count = count + 1
if count >= tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[1], ARGV[1])
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[6] .. ' ' .. reason)
    redis.call('PEXPIRE', KEYS[2], ARGV[7])
    return {0, reason}
end
redis.call('HSET', KEYS[1], ARGV[1], count .. ' ' .. ARGV[2] .. ' ' .. reason)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {count, reason}
"""


class CoolReason(Enum):
    UNREACHABLE = "unreachable"  # failures in a row, each one no connection or a dropped one
    FAILURES = "failures"  # failures in a row, one at least answered as failed or timed out
    NO_ACCOUNT = "no_account"  # code 3 to new work: the channel has no usable account
    AUTH_FAILED = "auth_failed"  # HTTP 401/403: the channel refused our secret


@dataclass(slots=True)
class _Streak:
    """A streak counted in this process while Redis cannot be reached."""

    count: int
    last: float  # monotonic
    reason: CoolReason


@dataclass(frozen=True, slots=True)
class Cooldown:
    until_ms: int
    reason: CoolReason


def _parse_cooldown(raw: str) -> Cooldown | None:
    until, _, reason = raw.partition(" ")
    try:
        return Cooldown(int(until), CoolReason(reason))
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
        self._local: dict[int, _Streak] = {}  # streaks counted here while Redis is unreachable
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

    async def failed(self, channel_id: int, reason: CoolReason) -> CoolReason | None:
        """Count one failed attempt (``reason``: ``UNREACHABLE`` or ``FAILURES``); the reason of the
        cooldown it started, when it was the one that cooled the channel, else None."""
        now_ms = _now_ms()
        until_ms = now_ms + self._cooldown_ms
        self._streaks.add(channel_id)
        try:
            streak, cooled = await self._count_failure(
                keys=[self._failures_key, self._cooldowns_key],
                args=[
                    channel_id,
                    now_ms,
                    self._streak_ttl_ms,
                    self._failures_to_cool,
                    reason.value,
                    until_ms,
                    self._cooldown_ms + _EXPIRY_MARGIN_MS,
                ],
            )
        except (aioredis.RedisError, OSError):
            return self._count_here(channel_id, reason, until_ms)
        self._local.pop(channel_id, None)
        if int(streak) != 0:
            return None
        self._streaks.discard(channel_id)
        cooldown = Cooldown(until_ms, CoolReason(cooled.decode()))
        self._remember(channel_id, cooldown)
        return cooldown.reason

    def _count_here(self, channel_id: int, reason: CoolReason, until_ms: int) -> CoolReason | None:
        """``failed`` while Redis cannot be reached: the streak is this process's own."""
        now = time.monotonic()
        streak = self._local.get(channel_id)
        if streak is None or now - streak.last > self._streak_ttl_ms / 1000:
            streak = self._local[channel_id] = _Streak(0, now, reason)
        streak.count += 1
        streak.last = now
        if reason is CoolReason.FAILURES:
            streak.reason = reason
        if streak.count < self._failures_to_cool:
            return None
        del self._local[channel_id]
        self._remember(channel_id, Cooldown(until_ms, streak.reason))
        return streak.reason

    async def succeeded(self, channel_id: int) -> None:
        """The channel answered: its failure streak ends. Redis is asked only when this
        process's view shows a streak there or is more than a second old."""
        self._local.pop(channel_id, None)
        stale = time.monotonic() - self._read_at > _REFRESH_S
        if not stale and channel_id not in self._streaks:
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
        self._local.pop(channel_id, None)
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
