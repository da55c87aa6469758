"""Places under a channel's in-flight cap: the SQL that counts what a channel has in flight
and takes or gives back one place.

In flight on a channel: tasks it took that have not ended, submits being sent to it now (a
SUBMITTING task marked with the channel when it took its place), and MODAL tasks whose
confirmation is being sent (an open hold). A MODAL task waiting for its client holds nothing
upstream and is not counted. Every count reads the tasks themselves, so a place is free the
moment its task ends, and a submit cut short by a crash holds its place only until the hold
sweep resolves its task.
"""

from __future__ import annotations

from enum import Enum

import asyncpg

SLOT_LOCK_BASE = 0x6D6A_6777_736C_0000  # "mjgwsl" + the channel id: one lock per channel

IN_FLIGHT = """
    t.channel_id IS NOT NULL
    AND (t.status IN ('SUBMITTING', 'NOT_START', 'SUBMITTED', 'IN_PROGRESS')
         OR (t.status = 'MODAL'
             AND EXISTS (SELECT FROM holds h WHERE h.task_id = t.id AND h.status = 'OPEN')))
"""
"""The condition on ``tasks t`` of a task in flight on ``t.channel_id``."""


class Slot(Enum):
    """What ``take_slot`` answers."""

    TAKEN = "taken"  # the task has its place: send it
    FULL = "full"  # the channel is at its cap: send it elsewhere, or nowhere
    ENDED = "ended"  # the task no longer waits for a channel (resolved meanwhile): send it nowhere


# The mark applies only to a task still SUBMITTING (the row is rechecked once its lock is
# had), so "taken" is read from the mark itself; a MODAL task with an open hold (its
# confirmation) is already its channel's and needs none.
_TAKE = f"""
WITH taken AS (
    SELECT count(*) AS n FROM (
        SELECT FROM tasks t WHERE t.channel_id = $2 AND t.id <> $1 AND {IN_FLIGHT} LIMIT $3
    ) AS s
), marked AS (
    UPDATE tasks SET channel_id = $2
    WHERE id = $1 AND status = 'SUBMITTING' AND (SELECT n FROM taken) < $3
    RETURNING id
)
SELECT CASE
    WHEN EXISTS (SELECT FROM marked) THEN 'taken'
    WHEN (SELECT n FROM taken) >= $3 THEN 'full'
    WHEN EXISTS (
        SELECT FROM tasks t JOIN holds h ON h.task_id = t.id
        WHERE t.id = $1 AND t.status = 'MODAL' AND t.channel_id = $2 AND h.status = 'OPEN'
    ) THEN 'taken'
    ELSE 'ended'
END
"""


async def take_slot(pool: asyncpg.Pool, task_id: int, channel_id: int, cap: int) -> Slot:
    """Whether the task got a place on the channel (fewer than ``cap`` others in flight there):
    ``TAKEN`` when a SUBMITTING task was marked as the channel's, or a MODAL one with an open
    hold already is; ``FULL`` at the cap; ``ENDED`` when the task is neither (it was resolved
    meanwhile, by the hold sweep say) and must not be sent.

    Takers of one channel queue on a transaction-level advisory lock and count after taking it,
    so the cap holds exactly across every replica: the next taker sees this mark."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SLOT_LOCK_BASE + channel_id)
        return Slot(await conn.fetchval(_TAKE, task_id, channel_id, cap))


async def give_back_slot(pool: asyncpg.Pool, task_id: int) -> None:
    """The channel did not take the task: its place is free again (no-op once it has ended)."""
    await pool.execute(
        "UPDATE tasks SET channel_id = NULL WHERE id = $1 AND status = 'SUBMITTING'", task_id
    )
