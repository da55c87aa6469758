"""Moving old ended tasks from ``tasks`` to ``tasks_archive`` (migrations/0014).

A task is moved once it has ended (SUCCESS, FAILURE, CANCEL or REJECTED) and was submitted
before the cutoff (its id starts with its submit time, so the key's own order finds them), with
no open hold and no webhook still to deliver. What only served it while it was live goes with
it: its resolved holds, upstream claims, delivered webhook events and media copy job. The ledger
is not touched: its rows still name the task, and the money queries read ``task_records``,
which has both tables.
"""

from __future__ import annotations

import asyncpg

_ARCHIVE = """
WITH old AS (
    SELECT id FROM tasks t
    WHERE id < $1 AND status IN ('SUCCESS', 'FAILURE', 'CANCEL', 'REJECTED')
      AND NOT EXISTS (SELECT FROM holds h WHERE h.task_id = t.id AND h.status = 'OPEN')
      AND NOT EXISTS (SELECT FROM webhook_outbox w WHERE w.task_id = t.id
                      AND w.delivered_at IS NULL AND w.given_up_at IS NULL)
    ORDER BY id LIMIT $2
    FOR UPDATE
), holds_gone AS (
    DELETE FROM holds WHERE task_id IN (SELECT id FROM old)
), claims_gone AS (
    DELETE FROM upstream_claims WHERE task_id IN (SELECT id FROM old)
), events_gone AS (
    DELETE FROM webhook_outbox WHERE task_id IN (SELECT id FROM old)
), copies_gone AS (
    DELETE FROM media_copies WHERE task_id IN (SELECT id FROM old)
), moved AS (
    DELETE FROM tasks WHERE id IN (SELECT id FROM old) RETURNING tasks.*
), kept AS (
    INSERT INTO tasks_archive SELECT * FROM moved RETURNING id
)
SELECT count(*) FROM kept
"""


async def archive_ended_tasks(pool: asyncpg.Pool, before_ms: int, page: int = 10_000) -> int:
    """Move every ended task submitted before ``before_ms`` (epoch ms), ``page`` per
    statement, each its own transaction. How many moved."""
    moved = 0
    while True:
        batch: int = await pool.fetchval(_ARCHIVE, before_ms * 1000, page)
        moved += batch
        if batch < page:
            return moved
