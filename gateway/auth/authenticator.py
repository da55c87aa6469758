"""Authentication: API key -> Principal, with a short in-process cache.

A key's record is cached for ``cache_ttl_s``; revoking a key publishes its hash on Redis, and
every process drops it from its cache at once. If that message is lost (Redis down), the cache
lifetime bounds how long a revoked key still works.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time

import asyncpg
import redis.asyncio as aioredis
import structlog

from gateway.auth.keys import hash_key, key_from_headers
from gateway.auth.limits import RateLimits, RequestRate
from gateway.domain import Principal
from gateway.errors import Forbidden, NotFound, Unauthorized
from gateway.storage import accounts
from gateway.storage.redis import follow
from gateway.storage.redis_keys import RedisKeys

log = structlog.get_logger(__name__)


def _principal(record: accounts.KeyRecord) -> Principal:
    return Principal(
        user_id=record.user_id,
        key_id=record.key_id,
        group_ratio_bp=record.group_ratio_bp,
        webhook_secret=record.webhook_secret,
        expires_at_ms=int(record.expires_at.timestamp() * 1000) if record.expires_at else None,
        allowed_actions=frozenset(record.allowed_actions) if record.allowed_actions else None,
        allowed_networks=(
            tuple(ipaddress.ip_network(c, strict=False) for c in record.allowed_cidrs)
            if record.allowed_cidrs
            else None
        ),
        requests_per_minute=record.requests_per_minute,
        max_open_tasks=record.max_open_tasks,
        user_requests_per_minute=record.user_requests_per_minute,
        user_max_open_tasks=record.user_max_open_tasks,
    )


class Authenticator:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        keys: RedisKeys,
        limits: RateLimits,
        cache_ttl_s: float = 5.0,
    ) -> None:
        self._pool = pool
        self._limits = limits
        self._redis = redis
        self._keys = keys
        self._ttl_s = cache_ttl_s
        self._cache: dict[bytes, tuple[float, tuple[Principal, bool]]] = {}

    async def authenticate(
        self, authorization: str | None, mj_api_secret: str | None, client_ip: str | None
    ) -> tuple[Principal, RequestRate | None]:
        """The caller behind these headers, and where it stands after this request is counted
        against its key's and user's per-minute limits (None: no such limit, or not counted).

        Unauthorized (401/24), Forbidden (403/24) or RateLimited (429/23).
        """
        key = key_from_headers(authorization, mj_api_secret)
        if key is None:
            raise Unauthorized("missing API key")
        known = await self._lookup(hash_key(key))
        if known is None:
            raise Unauthorized("unknown API key")
        principal, usable = known
        if not usable:
            raise Forbidden("API key disabled or revoked")
        if principal.expires_at_ms is not None and principal.expires_at_ms <= time.time() * 1000:
            raise Forbidden("API key expired")
        if principal.allowed_networks is not None and not _ip_allowed(
            client_ip, principal.allowed_networks
        ):
            raise Forbidden("client address not allowed for this API key")
        return principal, await self._limits.count_request(principal)

    async def key_holder(self, user_id: int, key_id: int) -> tuple[Principal, RequestRate | None]:
        """The user acting through one of their own keys from the web console (signed in with
        their password, so the key's client networks do not apply): NotFound for a key that
        is not theirs, else as ``authenticate``."""
        record = await accounts.find_user_key(self._pool, key_id, user_id)
        if record is None:
            raise NotFound(f"no key {key_id}")
        principal = _principal(record)
        if not record.usable:
            raise Forbidden("API key disabled or revoked")
        if principal.expires_at_ms is not None and principal.expires_at_ms <= time.time() * 1000:
            raise Forbidden("API key expired")
        return principal, await self._limits.count_request(principal)

    @staticmethod
    def check_action(principal: Principal, price_action: str) -> None:
        if principal.allowed_actions is not None and price_action not in principal.allowed_actions:
            raise Forbidden(f"action {price_action} not allowed for this API key")

    async def _lookup(self, key_hash: bytes) -> tuple[Principal, bool] | None:
        """(principal, usable) of a known key, from the cache when fresh; None if unknown."""
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await accounts.find_key(self._pool, key_hash)
        if record is None:
            return None
        known = (_principal(record), record.usable)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key_hash] = (now + self._ttl_s, known)
        return known

    def forget(self, key_hash: bytes) -> None:
        self._cache.pop(key_hash, None)

    async def announce_revocation(self, key_hash: bytes) -> None:
        """Tell every process (this one first) to drop this key from its cache now."""
        self.forget(key_hash)
        await publish_revocation(self._redis, self._keys, key_hash)

    async def listen_for_revocations(self) -> None:
        """Run until cancelled: drop revoked keys from the cache as their hashes arrive."""
        await follow(
            self._redis,
            self._keys.revoked_keys_channel,
            lambda data: self.forget(bytes.fromhex(data.decode())),
            lost=self._cache.clear,
        )


async def publish_revocation(redis: aioredis.Redis, keys: RedisKeys, key_hash: bytes) -> None:
    """Best effort: if Redis is down, caches expire the key within their lifetime."""
    with contextlib.suppress(aioredis.RedisError, OSError):
        await redis.publish(keys.revoked_keys_channel, key_hash.hex())


def _ip_allowed(
    client_ip: str | None,
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> bool:
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in network for network in networks)
