"""The ledger as the operator reads it: every move of a balance or a key's limit, newest first."""

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
