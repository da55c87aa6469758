"""Which open tasks a poll round asks about: running and young ones always, older queued ones
only on the rounds that include them."""

from __future__ import annotations

import time

import asyncpg

from gateway import admin
from gateway.storage import holds, task_sync
from gateway.storage.holds import Settle
from tests.support import BOX, hold_imagine

YOUNG_S = 60


async def _task(pool: asyncpg.Pool, user_id: int, key_id: int, channel_id: int, n: int) -> int:
    held = await hold_imagine(pool, user_id, key_id, 0, f"task {n}")
    await holds.settle_holds(pool, [Settle(held.hold_id, "SUBMITTED", channel_id, f"u{n}", "", {})])
    return held.task_id


async def test_waiting_tasks_are_asked_about_only_on_their_rounds(db_pool: asyncpg.Pool) -> None:
    user_id = await admin.create_user(db_pool, "nils", 0)
    key_id = (await admin.issue_key(db_pool, user_id)).key_id
    channel_id = await admin.add_channel(
        db_pool, BOX, "sim", "http://127.0.0.1:9", admin.ChannelChanges()
    )
    old_waiting, old_running, young_waiting = [
        await _task(db_pool, user_id, key_id, channel_id, n) for n in range(3)
    ]
    long_ago_ms = int((time.time() - 3600) * 1000)
    await db_pool.execute(
        "UPDATE tasks SET submit_time_ms = $1 WHERE id = ANY($2::BIGINT[])",
        long_ago_ms,
        [old_waiting, old_running],
    )
    await db_pool.execute("UPDATE tasks SET status = 'IN_PROGRESS' WHERE id = $1", old_running)
    young_since_ms = int((time.time() - YOUNG_S) * 1000)

    usual = await task_sync.open_upstream_tasks(
        db_pool, 100, waiting_too=False, young_since_ms=young_since_ms
    )
    full = await task_sync.open_upstream_tasks(
        db_pool, 100, waiting_too=True, young_since_ms=young_since_ms
    )

    assert {row[0] for row in usual} == {old_running, young_waiting}
    assert {row[0] for row in full} == {old_waiting, old_running, young_waiting}
