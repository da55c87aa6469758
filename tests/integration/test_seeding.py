"""``gateway bench --seed-rows``: the tasks, holds and ledger rows of a year, which add up."""

from __future__ import annotations

import time

import asyncpg

from gateway import admin
from gateway.bench.seeding import YEAR_MS, seed_rows
from gateway.billing.reconciliation import reconcile
from gateway.storage.holds import forget_finished_holds
from tests.support import BOX


async def test_a_seeded_year_of_tasks_reconciles_and_looks_like_the_gateways_own(
    db_pool: asyncpg.Pool,
) -> None:
    await admin.add_channel(db_pool, BOX, "sim", "http://127.0.0.1:9", admin.ChannelChanges())
    await seed_rows(db_pool, 3_000, users=40)

    statuses = dict(await db_pool.fetch("SELECT status, count(*) FROM tasks GROUP BY 1"))
    assert sum(statuses.values()) == 3_000
    assert statuses["FAILURE"] == 60
    assert statuses["CANCEL"] == 30
    assert await db_pool.fetchval("SELECT count(DISTINCT user_id) FROM tasks") == 40
    oldest, newest = await db_pool.fetchrow(
        "SELECT min(submit_time_ms), max(submit_time_ms) FROM tasks"
    )
    now_ms = time.time() * 1000
    assert now_ms - YEAR_MS - 60_000 < oldest < newest < now_ms - 86_400_000
    assert await db_pool.fetchval("SELECT count(*) FROM holds WHERE status = 'SETTLED'") == 3_000
    kinds = dict(await db_pool.fetch("SELECT kind, count(*) FROM ledger GROUP BY 1"))
    assert kinds == {"TOPUP": 40, "HOLD": 3_000, "SETTLE": 3_000, "REFUND": 90}
    # Every task id starts with its submit time, as the gateway's own ids do.
    assert (
        await db_pool.fetchval("SELECT count(*) FROM tasks WHERE id / 1000 <> submit_time_ms") == 0
    )

    report = await reconcile(db_pool, hold_grace_s=60.0)
    assert report.ok, report.summary()

    # A year on, a gateway keeps only the last week's holds; the ledger alone still adds up.
    forgotten = await forget_finished_holds(db_pool, 7 * 86_400, limit=3_000)
    kept = await db_pool.fetchval("SELECT count(*) FROM holds")
    assert forgotten + kept == 3_000
    assert 0 < kept <= 3_000 * 7 / 364 + 1  # the tasks end a day before now at the latest
    report = await reconcile(db_pool, hold_grace_s=60.0)
    assert report.ok, report.summary()
