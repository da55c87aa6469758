"""The reconciliation's queries: every place where the money does not add up.

Each query answers the rows that break one rule (so an empty answer is a pass). They read whole
tables: run them off-peak on a large database.
"""

from __future__ import annotations

from typing import Any

import asyncpg

# A user's balance is the sum of their ledger rows.
_USER_BALANCES = """
SELECT u.id AS user_id, u.balance_units, coalesce(l.total, 0)::BIGINT AS ledger_units
FROM users u
LEFT JOIN (SELECT user_id, sum(amount_units) AS total FROM ledger GROUP BY user_id) l
       ON l.user_id = u.id
WHERE u.balance_units <> coalesce(l.total, 0)
ORDER BY u.id
"""

# A limited key's remaining quota is the sum of its ledger rows' key amounts.
_KEY_LIMITS = """
SELECT k.id AS key_id, k.quota_remaining_units, coalesce(l.total, 0)::BIGINT AS ledger_units
FROM api_keys k
LEFT JOIN (SELECT api_key_id, sum(key_amount_units) AS total FROM ledger
           WHERE api_key_id IS NOT NULL GROUP BY api_key_id) l
       ON l.api_key_id = k.id
WHERE k.quota_remaining_units IS NOT NULL AND k.quota_remaining_units <> coalesce(l.total, 0)
ORDER BY k.id
"""

# Every ledger row names a user, and a key of that user when it names one.
_ORPHAN_ROWS = """
SELECT l.id AS ledger_id, l.user_id, l.api_key_id
FROM ledger l
LEFT JOIN users u ON u.id = l.user_id
LEFT JOIN api_keys k ON k.id = l.api_key_id
WHERE u.id IS NULL OR (l.api_key_id IS NOT NULL AND k.user_id IS DISTINCT FROM l.user_id)
ORDER BY l.id
"""

# No hold stays open past its deadline (the poller's sweep resolves it within a round).
_STALE_HOLDS = """
SELECT id AS hold_id, task_id, deadline
FROM holds
WHERE status = 'OPEN' AND deadline < now() - make_interval(secs => $1)
ORDER BY deadline
"""

# Per task, from the ledger alone (holds of ended tasks are deleted in time; the ledger is kept
# whole): charged at most once, refunded at most once and only when it ended FAILURE or CANCEL
# after a charge, every hold written as one HOLD row and at most one outcome (SETTLE or
# RELEASE), and its ledger rows add up to what it should cost now: the amount of its settled
# hold (nothing once refunded) plus any hold still open.
_TASK_MONEY = """
WITH by_source AS (
    SELECT task_id, starts_with(source, 'hold:') AS is_hold, sum(amount_units) AS net_units,
           count(*) FILTER (WHERE kind = 'REFUND') AS refunds,
           count(*) FILTER (WHERE kind = 'HOLD') AS holds,
           coalesce(-sum(amount_units) FILTER (WHERE kind = 'HOLD'), 0) AS held_units,
           count(*) FILTER (WHERE kind = 'SETTLE') AS settles,
           count(*) FILTER (WHERE kind = 'RELEASE') AS releases
    FROM ledger WHERE task_id IS NOT NULL GROUP BY task_id, source
), money AS (
    SELECT task_id, sum(net_units)::BIGINT AS net_units, sum(refunds) AS refunds,
           count(*) FILTER (WHERE is_hold AND settles > 0) AS charges,
           coalesce(sum(held_units) FILTER (WHERE is_hold AND settles > 0), 0) AS charged_units,
           coalesce(sum(held_units) FILTER (WHERE is_hold AND settles + releases = 0), 0)
               AS open_units,
           count(*) FILTER (WHERE is_hold AND (holds <> 1 OR settles + releases > 1))
               AS broken_holds
    FROM by_source GROUP BY task_id
), due AS (
    SELECT t.id AS task_id, t.status, m.net_units, m.refunds, m.charges, m.broken_holds,
           (-(CASE WHEN t.status IN ('FAILURE', 'CANCEL') THEN 0 ELSE m.charged_units END)
            - m.open_units)::BIGINT AS due_units
    FROM task_records t JOIN money m ON m.task_id = t.id
)
SELECT task_id, status, net_units, due_units, charges, refunds, broken_holds
FROM due
WHERE charges > 1 OR refunds > 1 OR broken_holds > 0 OR net_units <> due_units
   OR (refunds = 1 AND NOT (charges = 1 AND status IN ('FAILURE', 'CANCEL')))
ORDER BY task_id
"""

# Every hold still kept agrees with its ledger rows: one HOLD row of its task, user and amount,
# and a SETTLE row if and only if it is SETTLED, a RELEASE row if and only if RELEASED.
_HOLDS_IN_LEDGER = """
SELECT h.id AS hold_id, h.task_id, h.status, h.amount_units,
       l.holds AS ledger_holds, l.settles AS ledger_settles, l.releases AS ledger_releases
FROM holds h CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE kind = 'HOLD' AND task_id = h.task_id
                              AND user_id = h.user_id AND amount_units = -h.amount_units)
               AS holds,
           count(*) FILTER (WHERE kind = 'SETTLE') AS settles,
           count(*) FILTER (WHERE kind = 'RELEASE') AS releases
    FROM ledger WHERE source = 'hold:' || h.id
) l
WHERE l.holds <> 1
   OR (h.status, l.settles, l.releases) NOT IN (('OPEN', 0, 0), ('SETTLED', 1, 0),
                                                ('RELEASED', 0, 1))
ORDER BY h.id
"""

CHECKS = {
    "user_balances": _USER_BALANCES,
    "key_limits": _KEY_LIMITS,
    "orphan_ledger_rows": _ORPHAN_ROWS,
    "task_money": _TASK_MONEY,
    "holds_in_ledger": _HOLDS_IN_LEDGER,
}


async def find_gaps(pool: asyncpg.Pool, hold_grace_s: float) -> dict[str, list[dict[str, Any]]]:
    """Every rule's offending rows (as dicts), by rule name, read in one snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        gaps = {name: [dict(row) for row in await conn.fetch(sql)] for name, sql in CHECKS.items()}
        stale = await conn.fetch(_STALE_HOLDS, hold_grace_s)
        gaps["holds_past_deadline"] = [dict(row) for row in stale]
    return gaps
