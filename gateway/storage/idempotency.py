"""Idempotency keys: the first request of each (API key, Idempotency-Key) and its answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.storage.tasks import jsonb


@dataclass(frozen=True, slots=True)
class Existing:
    """The request that holds a key already: its fingerprint and, once done, its answer."""

    request_hash: bytes
    response_status: int | None
    response_body: Any


async def claim(
    pool: asyncpg.Pool, api_key_id: int, key: str, request_hash: bytes, ttl_s: float
) -> Existing | None:
    """Take the key for this request (None), or return what already holds it. An expired key
    is taken over as if it were new."""
    row = await pool.fetchrow(
        """
        INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4))
        ON CONFLICT (api_key_id, idempotency_key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, response_status = NULL,
                response_body = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
            WHERE idempotency_keys.expires_at < now()
        RETURNING 1
        """,
        api_key_id,
        key,
        request_hash,
        ttl_s,
    )
    if row is not None:
        return None
    held = await pool.fetchrow(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys"
        " WHERE api_key_id = $1 AND idempotency_key = $2",
        api_key_id,
        key,
    )
    if held is None:  # expired and purged between the two statements: try once more
        return await claim(pool, api_key_id, key, request_hash, ttl_s)
    body = held["response_body"]
    return Existing(
        bytes(held["request_hash"]),
        held["response_status"],
        json.loads(body) if body is not None else None,
    )


async def finish(pool: asyncpg.Pool, api_key_id: int, key: str, status: int, body: Any) -> None:
    await pool.execute(
        "UPDATE idempotency_keys SET response_status = $3, response_body = $4::JSONB"
        " WHERE api_key_id = $1 AND idempotency_key = $2",
        api_key_id,
        key,
        status,
        jsonb(body),
    )


async def release(pool: asyncpg.Pool, api_key_id: int, key: str) -> None:
    """Forget a claim whose request ended without an answer worth replaying."""
    await pool.execute(
        "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND idempotency_key = $2"
        " AND response_status IS NULL",
        api_key_id,
        key,
    )


async def purge_expired(pool: asyncpg.Pool, limit: int = 10_000) -> int:
    deleted: int = await pool.fetchval(
        "WITH gone AS (DELETE FROM idempotency_keys WHERE ctid IN ("
        " SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT $1)"
        " RETURNING 1) SELECT count(*) FROM gone",
        limit,
    )
    return deleted
