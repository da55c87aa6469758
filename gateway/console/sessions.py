"""Console sessions and sign-in limits, in Redis.

A session is a random token in an HttpOnly cookie; Redis keeps, under the token's SHA-256 (so
a dump of Redis opens no session), the user, the session's CSRF token, when it started, and a
message for the next page. A session ends when it has been idle for ``idle_s``, ``max_s`` after
it started, when its user signs out, and (every session of the user) when their password
changes or they are disabled. Losing Redis signs everyone out and loses nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from gateway.storage.redis_keys import RedisKeys

SIGN_IN_WINDOW_S = 60


@dataclass(frozen=True, slots=True)
class Session:
    digest: str
    user_id: int
    csrf: str
    started_ms: int

    def csrf_matches(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode(), self.csrf.encode())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleSessions:
    def __init__(self, redis: aioredis.Redis, keys: RedisKeys, idle_s: int, max_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self.idle_s = idle_s
        self.max_s = max_s

    async def start(self, user_id: int) -> tuple[str, Session]:
        """A new session of the user: the cookie's token, and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(_digest(token), user_id, secrets.token_urlsafe(32), _now_ms())
        key = self._keys.console_session(session.digest)
        mine = self._keys.console_user_sessions(user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "user": user_id,
                    "csrf": session.csrf,
                    "started": session.started_ms,
                },
            )
            pipe.expire(key, self.idle_s)
            pipe.sadd(mine, session.digest)
            pipe.expire(mine, self.max_s)
            await pipe.execute()
        return token, session

    async def load(self, token: str | None) -> Session | None:
        """The live session of this cookie token, its idle clock restarted; None if there is
        none (unknown, idle too long, or past its whole lifetime)."""
        if not token or len(token) > 128:
            return None
        digest = _digest(token)
        key = self._keys.console_session(digest)
        user, csrf, started = await self._redis.hmget(key, ["user", "csrf", "started"])
        if not isinstance(user, bytes) or not isinstance(csrf, bytes) or started is None:
            return None
        session = Session(digest, int(user), csrf.decode(), int(started))
        left_s = self.max_s - (_now_ms() - session.started_ms) // 1000
        if left_s <= 0:
            await self._redis.delete(key)
            return None
        await self._redis.expire(key, min(self.idle_s, left_s))
        return session

    async def end(self, session: Session) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.console_session(session.digest))
            pipe.srem(self._keys.console_user_sessions(session.user_id), session.digest)
            await pipe.execute()

    async def end_all(self, user_id: int) -> None:
        """End every session of the user (a new password, a disabled account)."""
        mine = self._keys.console_user_sessions(user_id)
        digests = await self._redis.smembers(mine)
        keys = [self._keys.console_session(_text(d)) for d in digests]
        await self._redis.delete(mine, *keys)

    async def say(self, session: Session, kind: str, text: str) -> None:
        """A message (``kind``: ok or error) for the next page the session shows."""
        await self._redis.hset(
            self._keys.console_session(session.digest), mapping={"say": f"{kind}:{text}"}
        )

    async def said(self, session: Session) -> tuple[str, str] | None:
        """The message waiting for this page, taken."""
        key = self._keys.console_session(session.digest)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, "say")
            pipe.hdel(key, "say")
            raw, _ = await pipe.execute()
        if raw is None:
            return None
        kind, _sep, text = raw.decode().partition(":")
        return kind, text


class SignInLimits:
    """At most ``attempts`` wrong passwords a minute per account and per client address; past
    that, sign-ins are refused without checking the password."""

    def __init__(self, redis: aioredis.Redis, keys: RedisKeys, attempts: int) -> None:
        self._redis = redis
        self._keys = keys
        self._attempts = attempts

    def _counters(self, name: str, address: str) -> list[str]:
        account = hashlib.sha256(name.encode()).hexdigest()
        return [
            self._keys.console_sign_in_failures("account", account),
            self._keys.console_sign_in_failures("address", address),
        ]

    async def refused(self, name: str, address: str) -> bool:
        values = await self._redis.mget(self._counters(name, address))
        return any(v is not None and int(v) >= self._attempts for v in values)

    async def failed(self, name: str, address: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in self._counters(name, address):
                # The window starts at the first failure: SET NX makes the counter with its
                # expiry, INCR keeps it (as EXPIRE NX would, which Redis 6 lacks).
                pipe.set(key, 0, ex=SIGN_IN_WINDOW_S, nx=True)
                pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, name: str, address: str) -> None:
        await self._redis.delete(self._counters(name, address)[0])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _now_ms() -> int:
    return int(time.time() * 1000)
