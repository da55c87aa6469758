"""Users and their API keys: create, list, disable and enable, issue, revoke, rate limits."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass

import asyncpg

from gateway.admin.money import PRICE_ACTION
from gateway.admin.views import page_size
from gateway.auth.keys import generate_key, hash_key, key_hint
from gateway.domain import KeySettings
from gateway.errors import BadRequest, NotFound
from gateway.storage import accounts, prices
from gateway.storage import console as console_store

MAX_RATE_LIMIT = 2**31 - 1
MAX_KEY_NAME = 500
NO_LIMITS = KeySettings()  # requests a minute or open tasks: the columns are INTEGER


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key_id: int
    key: str  # shown once, never stored


async def create_user(
    pool: asyncpg.Pool, name: str, balance_units: int = 0, group: str = "default"
) -> int:
    if balance_units < 0:
        raise BadRequest("balance must not be negative")
    try:
        return await accounts.create_user(
            pool, name, balance_units, group, secrets.token_urlsafe(32)
        )
    except asyncpg.UniqueViolationError:
        raise BadRequest(f"user {name} exists") from None
    except asyncpg.ForeignKeyViolationError:
        raise BadRequest(f"no group {group}") from None


async def issue_key(
    pool: asyncpg.Pool, user_id: int, settings: KeySettings = NO_LIMITS
) -> IssuedKey:
    """A new key of the user, with its settings; the key itself is in the answer only."""
    for cidr in settings.allowed_cidrs or ():
        _network(cidr)
    _check_rate_limits(settings.requests_per_minute, settings.max_open_tasks)
    key = generate_key()
    try:
        key_id = await accounts.create_key(pool, user_id, hash_key(key), key_hint(key), settings)
    except asyncpg.ForeignKeyViolationError:
        raise BadRequest(f"no user {user_id}") from None
    except (
        asyncpg.DataError,
        asyncpg.InvalidTextRepresentationError,
        asyncpg.CheckViolationError,
    ):
        raise BadRequest("invalid key settings: a value cannot be stored") from None
    return IssuedKey(key_id, key)


def _network(cidr: str) -> None:
    """A client network as PostgreSQL's CIDR type stores it: no bits set past the prefix."""
    try:
        ipaddress.ip_network(cidr)
    except ValueError:
        raise BadRequest(
            f"allowedCidrs: {cidr!r} is not a network such as 10.0.0.0/8 or 2001:db8::/32"
        ) from None


async def set_key_scope(
    pool: asyncpg.Pool,
    key_id: int,
    name: str,
    allowed_actions: list[str] | None,
    allowed_cidrs: list[str] | None,
) -> bytes:
    """A key's name, priced actions and client networks (None: any); its hash, to announce,
    so that every process applies the change now."""
    if len(name) > MAX_KEY_NAME:
        raise BadRequest(f"a key name is at most {MAX_KEY_NAME} characters")
    for action in allowed_actions or ():
        if not PRICE_ACTION.fullmatch(action):
            raise BadRequest(f"allowedActions: {action!r} is not a priced action")
    for cidr in allowed_cidrs or ():
        _network(cidr)
    key_hash = await accounts.set_key_scope(pool, key_id, name, allowed_actions, allowed_cidrs)
    if key_hash is None:
        raise BadRequest(f"no active key {key_id}")
    return key_hash


async def key(pool: asyncpg.Pool, key_id: int) -> accounts.KeyListing:
    found = await accounts.get_key(pool, key_id)
    if found is None:
        raise NotFound(f"no key {key_id}")
    return found


async def user_id_by_name(pool: asyncpg.Pool, name: str) -> int:
    user_id = await accounts.find_user_id(pool, name)
    if user_id is None:
        raise BadRequest(f"no user {name}")
    return user_id


async def revoke_key(pool: asyncpg.Pool, key_id: int) -> bytes:
    """Revoke a key in the database; returns its hash, to announce the revocation with."""
    key_hash = await accounts.revoke_key(pool, key_id)
    if key_hash is None:
        raise BadRequest(f"no active key {key_id}")
    return key_hash


def _check_rate_limits(requests_per_minute: int | None, max_open_tasks: int | None) -> None:
    for name, value in (
        ("requests per minute", requests_per_minute),
        ("open tasks", max_open_tasks),
    ):
        if value is not None and not 1 <= value <= MAX_RATE_LIMIT:
            raise BadRequest(f"a limit of {name} is 1 to {MAX_RATE_LIMIT}, or none")


async def set_user_limits(
    pool: asyncpg.Pool,
    user_id: int,
    *,
    requests_per_minute: int | None,
    max_open_tasks: int | None,
) -> None:
    """A user's rate limits across all of their keys (None: no limit of that kind); every
    process applies them within its auth cache lifetime. NotFound for an unknown user."""
    _check_rate_limits(requests_per_minute, max_open_tasks)
    if not await accounts.set_user_limits(
        pool, user_id, requests_per_minute=requests_per_minute, max_open_tasks=max_open_tasks
    ):
        raise NotFound(f"no user {user_id}")


async def set_key_rate_limits(
    pool: asyncpg.Pool,
    key_id: int,
    *,
    requests_per_minute: int | None,
    max_open_tasks: int | None,
) -> None:
    """A key's own rate limits (None: no limit of that kind); every process applies them within
    its auth cache lifetime. NotFound for an unknown key."""
    _check_rate_limits(requests_per_minute, max_open_tasks)
    if not await accounts.set_key_rate_limits(
        pool, key_id, requests_per_minute=requests_per_minute, max_open_tasks=max_open_tasks
    ):
        raise NotFound(f"no key {key_id}")


async def set_operator(pool: asyncpg.Pool, user_id: int, operator: bool) -> None:
    """Mark a user as an operator of the web console, or no longer."""
    if not await console_store.set_operator(pool, user_id, operator):
        raise NotFound(f"no user {user_id}")


async def set_user_group(pool: asyncpg.Pool, user_id: int, group: str) -> None:
    try:
        found = await prices.set_user_group(pool, user_id, group)
    except asyncpg.ForeignKeyViolationError:
        raise BadRequest(f"no group {group}") from None
    if not found:
        raise NotFound(f"no user {user_id}")


async def list_users(
    pool: asyncpg.Pool, name_prefix: str | None, before_id: int | None, limit: int
) -> list[accounts.UserRecord]:
    return await accounts.list_users(
        pool, name_prefix=name_prefix, before_id=before_id, limit=page_size(limit)
    )


async def list_keys(
    pool: asyncpg.Pool,
    user_id: int | None,
    include_revoked: bool,
    before_id: int | None,
    limit: int,
) -> list[accounts.KeyListing]:
    return await accounts.list_keys(
        pool,
        user_id=user_id,
        include_revoked=include_revoked,
        before_id=before_id,
        limit=page_size(limit),
    )


async def user(pool: asyncpg.Pool, user_id: int) -> accounts.UserRecord:
    found = await accounts.get_user(pool, user_id)
    if found is None:
        raise NotFound(f"no user {user_id}")
    return found


async def set_user_enabled(pool: asyncpg.Pool, user_id: int, enabled: bool) -> list[bytes]:
    """Enable or disable a user (every key of theirs with them); answers the hashes of their
    keys, for the caller to announce, so that every process drops them from its cache now."""
    key_hashes = await accounts.set_user_enabled(pool, user_id, enabled)
    if key_hashes is None:
        raise NotFound(f"no user {user_id}")
    return key_hashes
