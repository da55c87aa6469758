"""Users, their groups and API keys: the auth lookup and the operator's writes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.domain import KeySettings
from gateway.storage.filters import Filters


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """Everything authentication needs about one key and its user."""

    key_id: int
    user_id: int
    usable: bool  # key and user enabled, key not revoked
    expires_at: datetime | None
    allowed_actions: list[str] | None
    allowed_cidrs: list[str] | None
    group_ratio_bp: int
    webhook_secret: str
    requests_per_minute: int | None  # the key's own limits; None = none
    max_open_tasks: int | None
    user_requests_per_minute: int | None  # its user's, across all of the user's keys
    user_max_open_tasks: int | None


_FIND_KEY = """
    SELECT k.id AS key_id, k.user_id,
           k.enabled AND u.enabled AND k.revoked_at IS NULL AS usable,
           k.expires_at,
           k.allowed_actions, k.allowed_cidrs::TEXT[] AS allowed_cidrs,
           g.ratio_bp AS group_ratio_bp, u.webhook_secret,
           k.requests_per_minute, k.max_open_tasks,
           u.requests_per_minute AS user_requests_per_minute,
           u.max_open_tasks AS user_max_open_tasks
    FROM api_keys k
    JOIN users u ON u.id = k.user_id
    JOIN user_groups g ON g.name = u.group_name
    WHERE {where}
"""
_FIND_KEY_BY_HASH = _FIND_KEY.format(where="k.key_hash = $1")
_FIND_USER_KEY = _FIND_KEY.format(where="k.id = $1 AND k.user_id = $2")


async def find_key(pool: asyncpg.Pool, key_hash: bytes) -> KeyRecord | None:
    row = await pool.fetchrow(_FIND_KEY_BY_HASH, key_hash)
    return KeyRecord(**dict(row)) if row else None


async def find_user_key(pool: asyncpg.Pool, key_id: int, user_id: int) -> KeyRecord | None:
    """The user's key of that id (None: unknown, or someone else's)."""
    row = await pool.fetchrow(_FIND_USER_KEY, key_id, user_id)
    return KeyRecord(**dict(row)) if row else None


async def create_user(
    pool: asyncpg.Pool, name: str, balance_units: int, group_name: str, webhook_secret: str
) -> int:
    """A new user whose opening balance is a TOPUP ledger row, so balance == sum(ledger)."""
    async with pool.acquire() as conn, conn.transaction():
        user_id: int = await conn.fetchval(
            "INSERT INTO users (name, group_name, balance_units, webhook_secret)"
            " VALUES ($1, $2, $3, $4) RETURNING id",
            name,
            group_name,
            balance_units,
            webhook_secret,
        )
        if balance_units:
            await conn.execute(
                "INSERT INTO ledger (user_id, kind, amount_units, source, reason)"
                " VALUES ($1, 'TOPUP', $2, $3, 'opening balance')",
                user_id,
                balance_units,
                f"topup:{uuid.uuid4()}",
            )
        return user_id


async def find_user_id(pool: asyncpg.Pool, name: str) -> int | None:
    user_id: int | None = await pool.fetchval("SELECT id FROM users WHERE name = $1", name)
    return user_id


async def user_balance(pool: asyncpg.Pool, user_id: int) -> int | None:
    balance: int | None = await pool.fetchval(
        "SELECT balance_units FROM users WHERE id = $1", user_id
    )
    return balance


async def create_key(
    pool: asyncpg.Pool,
    user_id: int,
    key_hash: bytes,
    key_hint: str,
    settings: KeySettings,
) -> int:
    """A new key; a limited key's opening limit is an ADJUST ledger row (key_amount_units), so
    its remaining limit == the sum of its rows."""
    async with pool.acquire() as conn, conn.transaction():
        key_id: int = await conn.fetchval(
            """
            INSERT INTO api_keys (user_id, name, key_hash, key_hint, quota_remaining_units,
                                  expires_at, allowed_actions, allowed_cidrs,
                                  requests_per_minute, max_open_tasks)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::CIDR[], $9, $10)
            RETURNING id
            """,
            user_id,
            settings.name,
            key_hash,
            key_hint,
            settings.quota_units,
            settings.expires_at,
            settings.allowed_actions,
            settings.allowed_cidrs,
            settings.requests_per_minute,
            settings.max_open_tasks,
        )
        if settings.quota_units is not None:
            await conn.execute(
                "INSERT INTO ledger"
                " (user_id, api_key_id, kind, amount_units, key_amount_units, source, reason)"
                " VALUES ($1, $2, 'ADJUST', 0, $3, $4, 'opening key limit')",
                user_id,
                key_id,
                settings.quota_units,
                f"key-limit:opening:{key_id}",
            )
        return key_id


async def set_user_limits(
    pool: asyncpg.Pool,
    user_id: int,
    *,
    requests_per_minute: int | None,
    max_open_tasks: int | None,
) -> bool:
    """A user's rate limits across all of their keys from now on (None: no limit of that kind);
    False if there is no such user. Processes see it when their auth cache entry expires."""
    found: bool = await pool.fetchval(
        "WITH u AS (UPDATE users SET requests_per_minute = $2, max_open_tasks = $3,"
        " updated_at = now() WHERE id = $1 RETURNING id) SELECT EXISTS (SELECT FROM u)",
        user_id,
        requests_per_minute,
        max_open_tasks,
    )
    return found


async def set_key_rate_limits(
    pool: asyncpg.Pool,
    key_id: int,
    *,
    requests_per_minute: int | None,
    max_open_tasks: int | None,
) -> bool:
    """A key's own rate limits from now on (None: no limit of that kind); False if there is no
    such key. Processes see it when their auth cache entry expires."""
    found: bool = await pool.fetchval(
        "WITH k AS (UPDATE api_keys SET requests_per_minute = $2, max_open_tasks = $3"
        " WHERE id = $1 RETURNING id) SELECT EXISTS (SELECT FROM k)",
        key_id,
        requests_per_minute,
        max_open_tasks,
    )
    return found


async def revoke_key(pool: asyncpg.Pool, key_id: int) -> bytes | None:
    """Revoke a key; its hash (for cache eviction), or None if it was unknown or revoked."""
    key_hash: bytes | None = await pool.fetchval(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL"
        " RETURNING key_hash",
        key_id,
    )
    return key_hash


async def key_quota(pool: asyncpg.Pool, key_id: int) -> int | None:
    quota: int | None = await pool.fetchval(
        "SELECT quota_remaining_units FROM api_keys WHERE id = $1", key_id
    )
    return quota


@dataclass(frozen=True, slots=True)
class Account:
    """A user and one of their keys, as the key's holder may see them."""

    user_id: int
    name: str
    group_name: str
    balance_units: int
    key_id: int
    key_name: str
    key_hint: str
    key_limit_units: int | None  # what the key may still spend; None = only the balance limits


async def account(pool: asyncpg.Pool, user_id: int, key_id: int) -> Account | None:
    row = await pool.fetchrow(
        "SELECT u.id AS user_id, u.name, u.group_name, u.balance_units, k.id AS key_id,"
        "       k.name AS key_name, k.key_hint, k.quota_remaining_units AS key_limit_units"
        " FROM users u JOIN api_keys k ON k.user_id = u.id WHERE u.id = $1 AND k.id = $2",
        user_id,
        key_id,
    )
    return Account(**dict(row)) if row else None


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the operator sees it."""

    id: int
    name: str
    group_name: str
    balance_units: int
    enabled: bool
    requests_per_minute: int | None  # across all of the user's keys; None = no limit
    max_open_tasks: int | None
    keys: int  # keys not revoked
    created_at: datetime
    updated_at: datetime


_USER_COLUMNS = """
    u.id, u.name, u.group_name, u.balance_units, u.enabled, u.requests_per_minute,
    u.max_open_tasks,
    (SELECT count(*) FROM api_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL) AS keys,
    u.created_at, u.updated_at
"""


async def list_users(
    pool: asyncpg.Pool, *, name_prefix: str | None, before_id: int | None, limit: int
) -> list[UserRecord]:
    """Users, newest first, from below ``before_id`` (the page cursor)."""
    where = Filters()
    where.add("starts_with(u.name, {})", name_prefix)
    where.add("u.id < {}", before_id)
    rows = await pool.fetch(
        f"SELECT {_USER_COLUMNS} FROM users u {where.sql} ORDER BY u.id DESC LIMIT {where.next}",
        *where.args,
        limit,
    )
    return [UserRecord(**dict(row)) for row in rows]


async def get_user(pool: asyncpg.Pool, user_id: int) -> UserRecord | None:
    row = await pool.fetchrow(f"SELECT {_USER_COLUMNS} FROM users u WHERE u.id = $1", user_id)
    return UserRecord(**dict(row)) if row else None


async def set_user_enabled(pool: asyncpg.Pool, user_id: int, enabled: bool) -> list[bytes] | None:
    """Enable or disable a user; the hashes of their keys (whose cached entries are stale
    now), or None if there is no such user."""
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchval(
            "UPDATE users SET enabled = $2, updated_at = now() WHERE id = $1 RETURNING TRUE",
            user_id,
            enabled,
        )
        if not found:
            return None
        rows = await conn.fetch("SELECT key_hash FROM api_keys WHERE user_id = $1", user_id)
        return [bytes(row["key_hash"]) for row in rows]


@dataclass(frozen=True, slots=True)
class KeyListing:
    """An API key as the operator sees it: never the key, nor its hash."""

    id: int
    user_id: int
    name: str
    hint: str
    enabled: bool
    revoked_at: datetime | None
    expires_at: datetime | None
    limit_units: int | None
    allowed_actions: list[str] | None
    allowed_cidrs: list[str] | None
    requests_per_minute: int | None
    max_open_tasks: int | None
    created_at: datetime


_KEY_COLUMNS = """
    id, user_id, name, key_hint AS hint, enabled, revoked_at, expires_at,
    quota_remaining_units AS limit_units, allowed_actions, allowed_cidrs::TEXT[] AS allowed_cidrs,
    requests_per_minute, max_open_tasks, created_at
"""


async def list_keys(
    pool: asyncpg.Pool,
    *,
    user_id: int | None,
    include_revoked: bool,
    before_id: int | None,
    limit: int,
) -> list[KeyListing]:
    """Keys, newest first, of everyone or of one user, from below ``before_id``."""
    where = Filters()
    where.add("user_id = {}", user_id)
    where.add("id < {}", before_id)
    if not include_revoked:
        where.add("revoked_at IS NULL AND {}", True)
    rows = await pool.fetch(
        f"SELECT {_KEY_COLUMNS} FROM api_keys {where.sql} ORDER BY id DESC LIMIT {where.next}",
        *where.args,
        limit,
    )
    return [KeyListing(**dict(row)) for row in rows]


async def get_key(pool: asyncpg.Pool, key_id: int) -> KeyListing | None:
    rows = await pool.fetch(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id)
    return KeyListing(**dict(rows[0])) if rows else None


async def set_key_scope(
    pool: asyncpg.Pool,
    key_id: int,
    name: str,
    allowed_actions: list[str] | None,
    allowed_cidrs: list[str] | None,
) -> bytes | None:
    """A key's name, actions and networks; its hash (for the caches to drop), or None when
    there is no such key or it is revoked."""
    key_hash: bytes | None = await pool.fetchval(
        "UPDATE api_keys SET name = $2, allowed_actions = $3, allowed_cidrs = $4::CIDR[]"
        " WHERE id = $1 AND revoked_at IS NULL RETURNING key_hash",
        key_id,
        name,
        allowed_actions,
        allowed_cidrs,
    )
    return key_hash
