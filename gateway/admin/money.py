"""Money and the price book: top-ups, adjustments, key limits, prices, speed-mode and group
ratios."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import asyncpg

from gateway.domain import MODES
from gateway.errors import BadRequest, Conflict, NotFound
from gateway.storage import accounts, ledger, prices

PRICE_ACTION = re.compile(r"mj_[a-z0-9_]+")
REFERENCE = re.compile(r"[\x21-\x7e]{1,200}")  # a payment id or a ticket


GROUP_NAME = re.compile(r"[a-z0-9_-]{1,64}")


MAX_UNITS = 10**15  # one top-up, adjustment, limit or price: keeps balances far from BIGINT's end


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
    if reference is not None and not REFERENCE.fullmatch(reference):
        raise BadRequest("a reference is 1-200 printable characters without spaces")
    source = f"{kind.lower()}:{reference or uuid.uuid4()}"
    balance = await ledger.credit_user(pool, user_id, amount_units, kind, source, reason)
    if balance is not None:
        return Credit(True, balance, source)
    current = await accounts.user_balance(pool, user_id)
    if current is None:
        raise NotFound(f"no user {user_id}")
    earlier = await ledger.ledger_entry(pool, source, kind)
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
    if not await ledger.set_key_limit(pool, key_id, limit_units, source, reason or "key limit"):
        raise NotFound(f"no key {key_id}")


async def set_price(pool: asyncpg.Pool, action: str, price_units: int) -> None:
    """The base price of a priced action (``mj_...``); tasks already held keep their price."""
    if not 0 <= price_units <= MAX_UNITS:
        raise BadRequest(f"a price is 0 to {MAX_UNITS} units")
    if not PRICE_ACTION.fullmatch(action):
        raise BadRequest("a priced action is mj_ and lower-case letters, digits or _")
    await prices.set_price(pool, action, price_units)


async def set_mode_ratio(pool: asyncpg.Pool, mode: str, ratio_bp: int) -> None:
    """The multiplier of a speed mode, in basis points (10000 = x1)."""
    if mode not in MODES:
        raise BadRequest(f"mode is one of {', '.join(MODES)}")
    if ratio_bp < 0:
        raise BadRequest("a ratio must not be negative")
    await prices.set_mode_ratio(pool, mode, ratio_bp)


async def set_group(
    pool: asyncpg.Pool, name: str, ratio_bp: int, description: str | None = None
) -> None:
    """Create a user group or change its price ratio, in basis points (10000 = x1)."""
    if ratio_bp < 0:
        raise BadRequest("a ratio must not be negative")
    if not GROUP_NAME.fullmatch(name):
        raise BadRequest("a group name is 1-64 of a-z, 0-9, _ and -")
    await prices.set_group(pool, name, ratio_bp, description)


@dataclass(frozen=True, slots=True)
class PriceList:
    prices_units: dict[str, int]
    mode_ratios_bp: dict[str, int]
    groups: list[prices.Group]


async def price_list(pool: asyncpg.Pool) -> PriceList:
    base, modes = await prices.load_price_book(pool)
    return PriceList(dict(sorted(base.items())), modes, await prices.groups(pool))
