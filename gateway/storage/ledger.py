"""The ledger: the operator's credits and debits, a key's limit, and every move of a balance or a
limit as the operator reads it, newest first. (Holds write theirs in ``gateway.storage.holds``.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.storage.filters import Filters

LEDGER_KINDS = ("TOPUP", "ADJUST", "HOLD", "SETTLE", "RELEASE", "REFUND")


@dataclass(frozen=True, slots=True)
class LedgerRow:
    id: int
    user_id: int
    api_key_id: int | None
    task_id: int | None
    kind: str
    amount_units: int  # change of the user's balance
    key_amount_units: int  # change of the key's limit
    source: str
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LedgerSearch:
    """Every filter optional; times are [since, until)."""

    user_id: int | None = None
    api_key_id: int | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None  # the page cursor: rows below this id
    limit: int = 100


async def ledger_rows(pool: asyncpg.Pool, search: LedgerSearch) -> list[LedgerRow]:
    where = Filters()
    where.add("user_id = {}", search.user_id)
    where.add("api_key_id = {}", search.api_key_id)
    where.add("kind = {}", search.kind)
    where.add("created_at >= {}", search.since)
    where.add("created_at < {}", search.until)
    where.add("id < {}", search.before_id)
    rows = await pool.fetch(
        "SELECT id, user_id, api_key_id, task_id, kind, amount_units, key_amount_units, source,"
        f" reason, created_at FROM ledger {where.sql} ORDER BY id DESC LIMIT {where.next}",
        *where.args,
        search.limit,
    )
    return [LedgerRow(**dict(row)) for row in rows]


_CREDIT = """
WITH u AS (
    UPDATE users SET balance_units = balance_units + $2, updated_at = now()
    WHERE id = $1 AND balance_units + $2 >= 0
      AND NOT EXISTS (SELECT FROM ledger WHERE source = $4 AND kind = $3)
    RETURNING balance_units
), l AS (
    INSERT INTO ledger (user_id, kind, amount_units, source, reason)
    SELECT $1, $3, $2, $4, $5 FROM u
)
SELECT balance_units FROM u
"""


async def credit_user(
    pool: asyncpg.Pool, user_id: int, amount_units: int, kind: str, source: str, reason: str
) -> int | None:
    """Add ``amount_units`` (negative takes away) to the balance with its ledger row (``kind``
    TOPUP or ADJUST, ``source`` unique per kind). Answers the new balance; None when nothing
    moved: no such user, the balance would go below zero, or ``source`` was already applied."""
    try:
        balance: int | None = await pool.fetchval(
            _CREDIT, user_id, amount_units, kind, source, reason
        )
    except asyncpg.UniqueViolationError:  # the same source, applied meanwhile by another call
        return None
    return balance


async def ledger_entry(pool: asyncpg.Pool, source: str, kind: str) -> tuple[int, int] | None:
    """(user id, amount) of the ledger row with this source and kind, if there is one."""
    row = await pool.fetchrow(
        "SELECT user_id, amount_units FROM ledger WHERE source = $1 AND kind = $2", source, kind
    )
    return (row["user_id"], row["amount_units"]) if row else None


async def set_key_limit(
    pool: asyncpg.Pool, key_id: int, limit_units: int | None, source: str, reason: str
) -> bool:
    """Give a key a remaining limit (None: unlimited). A limit is an ADJUST row that brings the
    sum of the key's ledger rows to it. False if there is no such key.

    The key's row is locked first: a hold that recorded its ledger row but not yet its debit
    waits, and is counted after the new limit, so the sum stays right."""
    async with pool.acquire() as conn, conn.transaction():
        user_id: int | None = await conn.fetchval(
            "SELECT user_id FROM api_keys WHERE id = $1 FOR UPDATE", key_id
        )
        if user_id is None:
            return False
        await conn.execute(
            "UPDATE api_keys SET quota_remaining_units = $2 WHERE id = $1", key_id, limit_units
        )
        if limit_units is not None:
            await conn.execute(
                "INSERT INTO ledger"
                " (user_id, api_key_id, kind, amount_units, key_amount_units, source, reason)"
                " SELECT $1, $2, 'ADJUST', 0,"
                "        $3 - coalesce(sum(key_amount_units), 0), $4, $5"
                " FROM ledger WHERE api_key_id = $2",
                user_id,
                key_id,
                limit_units,
                source,
                reason,
            )
    return True
