"""Places under a channel's in-flight cap, taken against the real tables."""

from __future__ import annotations

import asyncpg

from gateway import admin
from gateway.domain import KeySettings
from gateway.storage.slots import Slot, take_slot
from tests.support import BOX, hold_imagine


async def _channel(pool: asyncpg.Pool) -> int:
    return await admin.add_channel(
        pool, BOX, "capped", "http://127.0.0.1:9", admin.ChannelChanges(secret="secret")
    )


async def test_a_task_resolved_before_its_send_gets_no_place(db_pool: asyncpg.Pool) -> None:
    user_id = await admin.create_user(db_pool, "dora", 0)
    key_id = (await admin.issue_key(db_pool, user_id, KeySettings(name="k"))).key_id
    channel_id = await _channel(db_pool)
    first = await hold_imagine(db_pool, user_id, key_id, 0, "first")
    swept = await hold_imagine(db_pool, user_id, key_id, 0, "swept")
    last = await hold_imagine(db_pool, user_id, key_id, 0, "last")
    await db_pool.execute("UPDATE tasks SET status = 'REJECTED' WHERE id = $1", swept.task_id)

    assert await take_slot(db_pool, first.task_id, channel_id, 2) is Slot.TAKEN
    assert await take_slot(db_pool, swept.task_id, channel_id, 2) is Slot.ENDED
    assert await take_slot(db_pool, last.task_id, channel_id, 2) is Slot.TAKEN
    assert await take_slot(db_pool, swept.task_id, channel_id, 2) is Slot.FULL

    marked = await db_pool.fetch(
        "SELECT id, channel_id FROM tasks WHERE user_id = $1 ORDER BY id", user_id
    )
    assert [(r["id"], r["channel_id"]) for r in marked] == [
        (first.task_id, channel_id),
        (swept.task_id, None),
        (last.task_id, channel_id),
    ]
