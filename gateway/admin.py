"""What an operator does: create users, issue and revoke keys, add channels, move money.

Used by the ``gateway admin`` CLI (which talks to the database directly) and by the demo.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.auth.keys import generate_key, hash_key, key_hint
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.storage import accounts, billing, channels

PRICE_ACTION = re.compile(r"mj_[a-z0-9_]+")
GROUP_NAME = re.compile(r"[a-z0-9_-]{1,64}")
MODES = ("FAST", "RELAX", "TURBO")
MAX_UNITS = 10**15  # one top-up, adjustment, limit or price: keeps balances far from BIGINT's end
MAX_RATE_LIMIT = 2**31 - 1  # requests a minute or open tasks: the columns are INTEGER


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
    pool: asyncpg.Pool,
    user_id: int,
    *,
    name: str = "",
    quota_units: int | None = None,
    expires_at: datetime | None = None,
    allowed_actions: list[str] | None = None,
    allowed_cidrs: list[str] | None = None,
    requests_per_minute: int | None = None,
    max_open_tasks: int | None = None,
) -> IssuedKey:
    key = generate_key()
    try:
        key_id = await accounts.create_key(
            pool,
            user_id,
            hash_key(key),
            key_hint(key),
            name=name,
            quota_units=quota_units,
            expires_at=expires_at,
            allowed_actions=allowed_actions,
            allowed_cidrs=allowed_cidrs,
            requests_per_minute=requests_per_minute,
            max_open_tasks=max_open_tasks,
        )
    except asyncpg.ForeignKeyViolationError:
        raise BadRequest(f"no user {user_id}") from None
    except (
        asyncpg.DataError,
        asyncpg.InvalidTextRepresentationError,
        asyncpg.CheckViolationError,
    ) as exc:
        raise BadRequest(f"invalid key settings: {exc}") from None
    return IssuedKey(key_id, key)


async def add_channel(
    pool: asyncpg.Pool,
    name: str,
    base_url: str,
    secret: str | None,
    *,
    weight: int = 1,
    priority: int = 0,
    modes: list[str] | None = None,
    actions: list[str] | None = None,
) -> int:
    try:
        return await channels.create_channel(
            pool,
            name,
            base_url,
            secret,
            weight=weight,
            priority=priority,
            modes=modes,
            actions=actions,
        )
    except asyncpg.UniqueViolationError:
        raise BadRequest(f"channel {name} exists") from None
    except asyncpg.CheckViolationError as exc:
        raise BadRequest(f"invalid channel: {exc.constraint_name}") from None


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


@dataclass(frozen=True, slots=True)
class Credit:
    applied: bool  # False: this reference was applied before, nothing moved now
    balance_units: int
    source: str


async def credit(
    pool: asyncpg.Pool,
    user_id: int,
    amount_units: int,
    *,
    kind: str,
    reason: str,
    reference: str | None = None,
) -> Credit:
    """A top-up (TOPUP, positive) or an adjustment (ADJUST, either sign), with its ledger row.

    ``reference`` (a payment id, a ticket) makes it idempotent: the same reference of the same
    kind moves money once, however often it is sent."""
    if abs(amount_units) > MAX_UNITS:
        raise BadRequest(f"at most {MAX_UNITS} units at a time")
    if kind == "TOPUP" and amount_units <= 0:
        raise BadRequest("a top-up must be positive")
    if kind == "ADJUST" and amount_units == 0:
        raise BadRequest("an adjustment must not be zero")
    if not reason.strip():
        raise BadRequest("a reason is required")
    source = f"{kind.lower()}:{reference or uuid.uuid4()}"
    balance = await billing.credit_user(pool, user_id, amount_units, kind, source, reason)
    if balance is not None:
        return Credit(True, balance, source)
    current = await accounts.user_balance(pool, user_id)
    if current is None:
        raise NotFound(f"no user {user_id}")
    earlier = await billing.ledger_entry(pool, source, kind)
    if earlier == (user_id, amount_units):
        return Credit(False, current, source)
    if earlier is not None:
        raise Conflict(f"reference {reference} was used for another {kind.lower()}")
    raise BadRequest(f"the balance ({current}) cannot go below zero")


async def set_key_limit(
    pool: asyncpg.Pool, key_id: int, limit_units: int | None, reason: str
) -> None:
    """A key's remaining limit from now on (None: unlimited); recorded in the ledger."""
    if limit_units is not None and not 0 <= limit_units <= MAX_UNITS:
        raise BadRequest(f"a key limit is 0 to {MAX_UNITS} units")
    source = f"key-limit:{uuid.uuid4()}"
    if not await billing.set_key_limit(pool, key_id, limit_units, source, reason or "key limit"):
        raise NotFound(f"no key {key_id}")


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


async def set_price(pool: asyncpg.Pool, action: str, price_units: int) -> None:
    """The base price of a priced action (``mj_...``); tasks already held keep their price."""
    if not 0 <= price_units <= MAX_UNITS:
        raise BadRequest(f"a price is 0 to {MAX_UNITS} units")
    if not PRICE_ACTION.fullmatch(action):
        raise BadRequest("a priced action is mj_ and lower-case letters, digits or _")
    await billing.set_price(pool, action, price_units)


async def set_mode_ratio(pool: asyncpg.Pool, mode: str, ratio_bp: int) -> None:
    """The multiplier of a speed mode, in basis points (10000 = x1)."""
    if mode not in MODES:
        raise BadRequest(f"mode is one of {', '.join(MODES)}")
    if ratio_bp < 0:
        raise BadRequest("a ratio must not be negative")
    await billing.set_mode_ratio(pool, mode, ratio_bp)


async def set_group(
    pool: asyncpg.Pool, name: str, ratio_bp: int, description: str | None = None
) -> None:
    """Create a user group or change its price ratio, in basis points (10000 = x1)."""
    if ratio_bp < 0:
        raise BadRequest("a ratio must not be negative")
    if not GROUP_NAME.fullmatch(name):
        raise BadRequest("a group name is 1-64 of a-z, 0-9, _ and -")
    await billing.set_group(pool, name, ratio_bp, description)


async def set_user_group(pool: asyncpg.Pool, user_id: int, group: str) -> None:
    try:
        found = await billing.set_user_group(pool, user_id, group)
    except asyncpg.ForeignKeyViolationError:
        raise BadRequest(f"no group {group}") from None
    if not found:
        raise NotFound(f"no user {user_id}")


@dataclass(frozen=True, slots=True)
class PriceList:
    prices_units: dict[str, int]
    mode_ratios_bp: dict[str, int]
    groups: list[billing.Group]


async def price_list(pool: asyncpg.Pool) -> PriceList:
    prices, modes = await billing.load_price_book(pool)
    return PriceList(dict(sorted(prices.items())), modes, await billing.groups(pool))
