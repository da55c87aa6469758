"""``gateway bench --seed-rows N``: a database the size a relay reaches, filled in SQL.

N tasks of ``users`` users (one key each), submitted at even steps over the twelve months before
now, as the gateway writes them: an imagine with its buttons and properties; 2% FAILURE and 1%
CANCEL, refunded; the rest SUCCESS. Each has its settled hold and its ledger rows (HOLD, SETTLE,
and REFUND where refunded), and each user's balance is their ledger's sum after a top-up, so that
``gateway reconcile`` finds no gap. Batches of ``BATCH`` tasks, one statement each.

Then, as a running gateway would have done along the year, the holds of ended tasks older than
the default keeping are deleted (timed), and ``gateway reconcile`` runs over what is left.
Last, a checkpoint and a sync put what was written on the disk before the phases start.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass

import asyncpg

from gateway.billing.reconciliation import reconcile
from gateway.config import RelaySettings
from gateway.storage.holds import forget_finished_holds

BATCH = 50_000
YEAR_MS = 365 * 86_400_000
PRICE_UNITS = 100_000
TOPUP_UNITS = 10**15
_BUTTONS = json.dumps(
    [
        {"customId": f"MJ::JOB::{kind}::{n}::5f2b1c9e-6a0d-4c3e-9d1b-7e8f00{n}a1b2c3", "emoji": "",
         "label": f"{label}{n}", "type": 2, "style": 2}
        for kind, label in (("upsample", "U"), ("variation", "V"))
        for n in range(1, 5)
    ]
    + [{"customId": "MJ::JOB::reroll::0::5f2b1c9e-6a0d-4c3e-9d1b-7e8f00a1b2c3::SOLO",
        "emoji": "🔄", "label": "", "type": 2, "style": 2}]
)  # fmt: skip
_PROPERTIES = json.dumps(
    {"finalPrompt": "a lighthouse at dawn, volumetric light --ar 3:2 --v 6.1",
     "discordInstanceId": "1118138338562560102", "notifyHook": ""}
)  # fmt: skip

_USERS = """
INSERT INTO users (name, balance_units, webhook_secret)
SELECT 'seed-' || g, 0, md5('seed-' || g) FROM generate_series(1, $1) g
"""
_KEYS = """
INSERT INTO api_keys (user_id, name, key_hash, key_hint)
SELECT id, 'seed', sha256(convert_to('seed-key-' || id, 'UTF8')), 'sk-seed...' || id
FROM users WHERE starts_with(name, 'seed-')
"""
_TOPUPS = """
INSERT INTO ledger (user_id, kind, amount_units, source, reason, created_at)
SELECT id, 'TOPUP', $1, 'topup:seed-' || id, 'seed', now() - interval '366 days'
FROM users WHERE starts_with(name, 'seed-')
"""
_MEMBERS = """
CREATE TEMPORARY TABLE seed_members AS
SELECT (row_number() OVER (ORDER BY u.id)) - 1 AS n, u.id AS user_id, k.id AS key_id
FROM users u JOIN api_keys k ON k.user_id = u.id WHERE starts_with(u.name, 'seed-')
"""
# $1 first, $2 last (exclusive), $3 N, $4 users, $5 the first submit (epoch ms), $6 channel id,
# $7 price, $8 buttons, $9 properties, $10 the span the submits are spread over (ms).
_TASKS = """
WITH spec AS (
    SELECT g AS n, $5::BIGINT + g * ($10::BIGINT / $3::BIGINT) AS at_ms,
           CASE WHEN g % 50 = 7 THEN 'FAILURE' WHEN g % 100 = 13 THEN 'CANCEL'
                ELSE 'SUCCESS' END AS status
    FROM generate_series($1::BIGINT, $2::BIGINT - 1) g
), t AS (
    INSERT INTO tasks (id, user_id, api_key_id, channel_id, upstream_task_id, action, price_action,
                       mode, price_units, status, progress, prompt, prompt_en, description,
                       submit_time_ms, start_time_ms, finish_time_ms, upstream_image_url,
                       fail_reason, buttons, properties, created_at, updated_at)
    SELECT s.at_ms * 1000 + s.n % 1000, m.user_id, m.key_id, $6, 'seed-' || s.n, 'IMAGINE',
           'mj_imagine', 'FAST', $7, s.status,
           CASE WHEN s.status = 'SUCCESS' THEN '100%' ELSE '' END,
           'a lighthouse at dawn, volumetric light --ar 3:2', 'a lighthouse at dawn',
           '/imagine a lighthouse at dawn, volumetric light --ar 3:2', s.at_ms, s.at_ms + 2000,
           s.at_ms + 45000,
           CASE WHEN s.status = 'SUCCESS'
                THEN 'https://cdn.discordapp.com/attachments/1/' || s.n || '/grid.png' END,
           CASE WHEN s.status = 'FAILURE' THEN 'banned prompt' END,
           CASE WHEN s.status = 'SUCCESS' THEN $8::JSONB ELSE '[]' END, $9::JSONB,
           to_timestamp(s.at_ms / 1000.0), to_timestamp((s.at_ms + 45000) / 1000.0)
    FROM spec s JOIN seed_members m ON m.n = s.n % $4
    RETURNING id, user_id, api_key_id, status, submit_time_ms
), h AS (
    INSERT INTO holds (task_id, user_id, api_key_id, amount_units, key_limited, status, deadline,
                       created_at, resolved_at)
    SELECT id, user_id, api_key_id, $7, FALSE, 'SETTLED',
           to_timestamp(submit_time_ms / 1000.0) + interval '10 minutes',
           to_timestamp(submit_time_ms / 1000.0), to_timestamp(submit_time_ms / 1000.0 + 1)
    FROM t
    RETURNING id, task_id, user_id, api_key_id, created_at
), moves AS (
    INSERT INTO ledger (user_id, api_key_id, task_id, kind, amount_units, source, created_at)
    SELECT h.user_id, h.api_key_id, h.task_id, m.kind, m.amount, m.source, m.at
    FROM h JOIN t ON t.id = h.task_id
    CROSS JOIN LATERAL (VALUES
        ('HOLD', -$7::BIGINT, 'hold:' || h.id, h.created_at),
        ('SETTLE', 0::BIGINT, 'hold:' || h.id, h.created_at + interval '1 second'),
        ('REFUND', $7::BIGINT, 'task:' || h.task_id, h.created_at + interval '45 seconds')
    ) AS m (kind, amount, source, at)
    WHERE m.kind <> 'REFUND' OR t.status IN ('FAILURE', 'CANCEL')
)
SELECT count(*) FROM t
"""
_BALANCES = """
UPDATE users SET balance_units = l.total
FROM (SELECT user_id, sum(amount_units) AS total FROM ledger GROUP BY user_id) l
WHERE users.id = l.user_id AND starts_with(users.name, 'seed-')
"""


async def seed_rows(pool: asyncpg.Pool, rows: int, users: int = 10_000) -> float:
    """Fill the database with ``rows`` tasks of ``users`` users (above); seconds taken."""
    started = time.monotonic()
    users = max(1, min(users, rows))
    channel_id = await pool.fetchval("SELECT min(id) FROM channels")
    first_ms = int(time.time() * 1000) - YEAR_MS
    async with pool.acquire() as conn:
        await conn.execute(_USERS, users)
        await conn.execute(_KEYS)
        await conn.execute(_TOPUPS, TOPUP_UNITS)
        await conn.execute(_MEMBERS)
        for low in range(0, rows, BATCH):
            high = min(rows, low + BATCH)
            await conn.execute(
                _TASKS, low, high, rows, users, first_ms, channel_id, PRICE_UNITS, _BUTTONS,
                _PROPERTIES, YEAR_MS - 86_400_000,
            )  # fmt: skip
            print(f"  seeded {high:,} of {rows:,} tasks", file=sys.stderr, flush=True)
        await conn.execute(_BALANCES)
        await conn.execute("DROP TABLE seed_members")
        await conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


@dataclass(frozen=True, slots=True)
class Seeded:
    rows: int
    seed_s: float
    holds_forgotten: int
    forget_s: float  # deleting the holds of ended tasks past the default keeping
    reconcile_s: float  # ``gateway reconcile`` over the seeded database
    reconciled: bool  # and it found no gap


async def seed_and_reconcile(database_url: str, rows: int) -> Seeded:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, command_timeout=3600)
    try:
        seed_s = await seed_rows(pool, rows)
        started = time.monotonic()
        keep_s = RelaySettings().finished_holds_keep_days * 86_400
        forgotten = await forget_finished_holds(pool, keep_s, limit=rows)
        forget_s = time.monotonic() - started
        await pool.execute("VACUUM ANALYZE holds")
        started = time.monotonic()
        report = await reconcile(pool, hold_grace_s=60.0)
        reconcile_s = time.monotonic() - started
        # Gigabytes were just written: they reach the disk now, not during the measured phases.
        await pool.execute("CHECKPOINT")
        os.sync()
        return Seeded(rows, seed_s, forgotten, forget_s, reconcile_s, report.ok)
    finally:
        await pool.close()
