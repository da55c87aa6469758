"""Places under a channel's in-flight cap: take or give back one place.

In flight on a channel: tasks it took that have not ended, submits being sent to it now (a
SUBMITTING task marked with the channel when it took its place), and MODAL tasks whose
confirmation is being sent (an open hold); the SQL function ``task_in_flight`` (migration 0008)
is that condition, for the cap and for the gauges. A MODAL task waiting for its client holds
nothing upstream and is not counted. Every count reads the tasks themselves, so a place is free
the moment its task ends, and a submit cut short by a crash holds its place only until the hold
sweep resolves its task.
"""

from __future__ import annotations

from enum import Enum

import asyncpg

SLOT_LOCK_BASE = 0x6D6A_6777_736C_0000  # "mjgwsl" + the channel id: one lock per channel


class Slot(Enum):
    """What ``take_slot`` answers."""

    TAKEN = "taken"  # the task has its place: send it
    FULL = "full"  # the channel is at its cap: send it elsewhere, or nowhere
    ENDED = "ended"  # the task no longer waits for a channel (resolved meanwhile): send it nowhere


async def take_slot(pool: asyncpg.Pool, task_id: int, channel_id: int, cap: int) -> Slot:
    """Whether the task got a place on the channel (fewer than ``cap`` others in flight there):
    ``TAKEN`` when a SUBMITTING task was marked as the channel's, or a MODAL one with an open
    hold already is; ``FULL`` at the cap; ``ENDED`` when the task is neither (it was resolved
    meanwhile, by the hold sweep say) and must not be sent.

    One call of the SQL function ``take_slot`` (migration 0008): takers of one channel queue on
    a transaction-level advisory lock and count after taking it, so the cap holds exactly across
    every replica (the next taker sees this mark), and the lock is held for that call alone."""
    answer = await pool.fetchval(
        "SELECT take_slot($1, $2, $3, $4)", SLOT_LOCK_BASE + channel_id, task_id, channel_id, cap
    )
    return Slot(answer)


async def give_back_slot(pool: asyncpg.Pool, task_id: int) -> None:
    """The channel did not take the task: its place is free again (no-op once it has ended)."""
    await pool.execute(
        "UPDATE tasks SET channel_id = NULL WHERE id = $1 AND status = 'SUBMITTING'", task_id
    )
