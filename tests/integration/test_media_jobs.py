"""The copy queue does not grow forever: done jobs go after a day, failed ones stay for
``gateway media refetch``, and pending ones go only where media are not kept (nothing will ever
do them there)."""

from __future__ import annotations

import asyncpg

from gateway.config import MediaSettings
from gateway.media.keeping import forget_old_copy_jobs

JOBS = [
    # task id, status, hours since queued, hours since done
    (1, "DONE", 72, 48),
    (2, "DONE", 2, 1),
    (3, "FAILED", 120, None),
    (4, "PENDING", 48, None),
    (5, "PENDING", 1, None),
]


async def _jobs(pool: asyncpg.Pool) -> list[int]:
    return [
        row["task_id"] for row in await pool.fetch("SELECT task_id FROM media_copies ORDER BY 1")
    ]


async def _queue(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM media_copies")
    for task_id, status, created, done in JOBS:
        await pool.execute(
            "INSERT INTO media_copies (task_id, status, created_at, done_at) VALUES"
            " ($1, $2, now() - make_interval(hours => $3), now() - make_interval(hours => $4))",
            task_id,
            status,
            created,
            done,
        )


async def test_old_done_jobs_go_and_pending_ones_only_where_media_are_not_kept(
    db_pool: asyncpg.Pool,
) -> None:
    await _queue(db_pool)
    assert await forget_old_copy_jobs(db_pool, MediaSettings(keep=True)) == 1
    assert await _jobs(db_pool) == [2, 3, 4, 5]
    assert await forget_old_copy_jobs(db_pool, MediaSettings(keep=True)) == 0

    await _queue(db_pool)
    assert await forget_old_copy_jobs(db_pool, MediaSettings(keep=False)) == 2
    assert await _jobs(db_pool) == [2, 3, 5]
