"""Usage read from the ledger: charges kept and refunds, by priced action and UTC day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class UsageRow:
    day: date  # UTC
    action: str  # the priced action, e.g. mj_imagine
    charges: int  # tasks whose charge was kept that day
    charged_units: int
    refunds: int
    refunded_units: int


# A kept charge is the task's SETTLE row (its amount is the task's stored price); a refund is its
# REFUND row. Both carry the user and the key, and are found through the ledger's indexes; the
# task is read wherever it is kept (``task_records``: archived or not).
_USAGE = """
SELECT (l.created_at AT TIME ZONE 'UTC')::DATE AS day, t.price_action AS action,
       count(*) FILTER (WHERE l.kind = 'SETTLE') AS charges,
       coalesce(sum(t.price_units) FILTER (WHERE l.kind = 'SETTLE'), 0)::BIGINT AS charged_units,
       count(*) FILTER (WHERE l.kind = 'REFUND') AS refunds,
       coalesce(sum(l.amount_units) FILTER (WHERE l.kind = 'REFUND'), 0)::BIGINT AS refunded_units
FROM ledger l JOIN task_records t ON t.id = l.task_id
WHERE l.kind IN ('SETTLE', 'REFUND') AND l.created_at >= $1 AND l.created_at < $2 {only}
GROUP BY 1, 2
ORDER BY 1, 2
"""
# One statement per filter, each able to use its index (ledger_user_idx, ledger_key_idx).
_FILTERS = {
    (False, False): "",
    (True, False): "AND l.user_id = $3",
    (False, True): "AND l.api_key_id = $3",
    (True, True): "AND l.user_id = $3 AND l.api_key_id = $4",
}


async def usage_rows(
    pool: asyncpg.Pool,
    user_id: int | None,
    key_id: int | None,
    since: datetime,
    until: datetime,
) -> list[UsageRow]:
    """Rows of [since, until), for one user and/or one key (None: all)."""
    sql = _USAGE.format(only=_FILTERS[user_id is not None, key_id is not None])
    ids = [i for i in (user_id, key_id) if i is not None]
    rows = await pool.fetch(sql, since, until, *ids)
    return [UsageRow(**dict(row)) for row in rows]
