"""``Idempotency-Key`` on submits: one charge and one answer per key, for 24 hours.

The first request with a key claims it with a fingerprint of its method, path and body. A later
request with the same key and fingerprint gets the first one's answer again (status and body)
and nothing else happens; with another fingerprint, or while the first is still running, it is
a 409/21. Only final answers are kept: success and client errors (4xx but 429). After a rate
limit, a server-side failure (5xx, nothing charged) or a crash the key is freed for a retry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.errors import ApiError, BadRequest, Conflict
from gateway.storage import idempotency as store

MAX_KEY_CHARS = 255


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    replayed: bool


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    return hashlib.sha256(b"\n".join((method.encode(), path.encode(), body))).digest()


class Idempotency:
    def __init__(self, pool: asyncpg.Pool, ttl_s: float = 86_400.0) -> None:
        self._pool = pool
        self._ttl_s = ttl_s

    async def once(
        self,
        api_key_id: int,
        key: str,
        request_fingerprint: bytes,
        produce: Callable[[], Awaitable[Any]],
        render_error: Callable[[ApiError], Any],
    ) -> Answer:
        """Run ``produce`` once per key; ApiErrors are answers too (kept, then re-raised)."""
        if not 1 <= len(key) <= MAX_KEY_CHARS:
            raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} characters")
        existing = await store.claim(self._pool, api_key_id, key, request_fingerprint, self._ttl_s)
        if existing is not None:
            if existing.request_hash != request_fingerprint:
                raise Conflict("Idempotency-Key already used with another request")
            if existing.response_status is None:
                raise Conflict("a request with this Idempotency-Key is still running")
            return Answer(existing.response_status, existing.response_body, replayed=True)
        try:
            body = await produce()
        except ApiError as exc:
            if exc.http_status < 500 and exc.http_status != 429:
                await store.finish(self._pool, api_key_id, key, exc.http_status, render_error(exc))
            else:
                await store.release(self._pool, api_key_id, key)
            raise
        except BaseException:
            await store.release(self._pool, api_key_id, key)
            raise
        await store.finish(self._pool, api_key_id, key, 200, body)
        return Answer(200, body, replayed=False)

    async def purge_expired(self) -> int:
        return await store.purge_expired(self._pool)
