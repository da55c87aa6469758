"""Holds in SQL: a task's price held with the task row it pays for, then settled or released.

Every balance change is a conditional UPDATE in the same statement or transaction as its ledger
row; a hold is resolved by a compare-and-set on its status, so each move happens at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import asyncpg

from gateway.storage.tasks import jsonb


class HoldRefusal(Enum):
    USER_BALANCE = "user_balance"
    KEY_LIMIT = "key_limit"
    KEY_OPEN_TASKS = "key_open_tasks"  # the key's cap on open tasks is reached
    USER_OPEN_TASKS = "user_open_tasks"  # the user's cap on open tasks is reached


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task about to be submitted upstream, held for ``price_units``; refused when the key
    already has ``key_max_open_tasks`` open tasks, or the user ``user_max_open_tasks`` (None:
    no cap)."""

    user_id: int
    api_key_id: int
    parent_id: int | None
    action: str
    price_action: str
    mode: str
    bot_type: str
    price_units: int
    prompt: str | None
    state: str | None
    notify_hook: str | None
    submit_time_ms: int
    key_max_open_tasks: int | None = None
    user_max_open_tasks: int | None = None

    @property
    def capped(self) -> bool:
        """Whether a cap on open tasks applies: such a hold is counted under the cap's lock."""
        return self.key_max_open_tasks is not None or self.user_max_open_tasks is not None


@dataclass(frozen=True, slots=True)
class Held:
    task_id: int
    hold_id: int


HOLD_REFUSED_SQLSTATE = "GW025"
_REFUSALS = {refusal.value: refusal for refusal in HoldRefusal}
_HOLD_NEW_TASKS = (
    "SELECT task_id, hold_id, refused FROM hold_new_tasks("
    "$1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4, $5::BIGINT[], $6::TEXT[], $7::TEXT[],"
    " $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[], $13::BIGINT[])"
)
_HOLD_NEW_CAPPED_TASK = (
    "SELECT task_id, hold_id, refused FROM hold_new_capped_task("
    "$14, $15, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)


async def _hold(pool: asyncpg.Pool, sql: str, *args: Any) -> Held | HoldRefusal | None:
    """Call a single hold function (migrations/0002, 0007): one statement, which debits last,
    so the balance row is locked only from its debit to the commit. None when the target was
    refused."""
    try:
        (row,) = await pool.fetch(sql, *args)
    except asyncpg.PostgresError as exc:
        if exc.sqlstate != HOLD_REFUSED_SQLSTATE:
            raise
        refused = exc.detail
    else:
        refused = row["refused"]
        if refused is None:
            return Held(row["task_id"], row["hold_id"])
    return _REFUSALS.get(refused or "")


async def hold_new_tasks(
    pool: asyncpg.Pool, tasks: Sequence[NewTask], hold_deadline_s: float
) -> list[Held | HoldRefusal]:
    """Debit the users (and limited keys) and insert each SUBMITTING task with its open hold,
    in one statement (migrations/0016); one answer per task, in order.

    Each task is all or nothing: a refused one changes no balance, key limit, task or hold, and
    the others are held as if it had never been asked for. Caps on open tasks are not checked
    here: such tasks go through ``hold_new_task``.
    """
    rows = await pool.fetch(
        _HOLD_NEW_TASKS,
        [t.user_id for t in tasks],
        [t.api_key_id for t in tasks],
        [t.price_units for t in tasks],
        hold_deadline_s,
        [t.parent_id for t in tasks],
        [t.action for t in tasks],
        [t.price_action for t in tasks],
        [t.mode for t in tasks],
        [t.bot_type for t in tasks],
        [t.prompt for t in tasks],
        [t.state for t in tasks],
        [t.notify_hook for t in tasks],
        [t.submit_time_ms for t in tasks],
    )
    return [
        _REFUSALS[row["refused"]] if row["refused"] else Held(row["task_id"], row["hold_id"])
        for row in rows
    ]


async def hold_new_task(
    pool: asyncpg.Pool, task: NewTask, hold_deadline_s: float
) -> Held | HoldRefusal:
    """Hold one task (see ``hold_new_tasks``). A task with a cap on open tasks is counted and
    inserted under the cap's lock (migrations/0007); one without takes no lock and counts
    nothing."""
    if not task.capped:
        (held,) = await hold_new_tasks(pool, [task], hold_deadline_s)
        return held
    capped = await _hold(
        pool,
        _HOLD_NEW_CAPPED_TASK,
        task.user_id,
        task.api_key_id,
        task.price_units,
        hold_deadline_s,
        task.parent_id,
        task.action,
        task.price_action,
        task.mode,
        task.bot_type,
        task.prompt,
        task.state,
        task.notify_hook,
        task.submit_time_ms,
        task.key_max_open_tasks,
        task.user_max_open_tasks,
    )
    return capped if capped is not None else HoldRefusal.USER_BALANCE


async def hold_modal_task(
    pool: asyncpg.Pool,
    user_id: int,
    api_key_id: int,
    task_id: int,
    price_action: str,
    price_units: int,
    hold_deadline_s: float,
) -> Held | HoldRefusal | None:
    """Hold the price of confirming a MODAL task; None if it is not MODAL or already paid."""
    return await _hold(
        pool,
        "SELECT task_id, hold_id, refused FROM hold_modal_task($1, $2, $3, $4, $5, $6)",
        user_id,
        api_key_id,
        price_units,
        hold_deadline_s,
        task_id,
        price_action,
    )


@dataclass(frozen=True, slots=True)
class Settle:
    """What the upstream's acceptance makes of a held task."""

    hold_id: int
    status: str
    channel_id: int
    upstream_task_id: str | None
    description: str | None
    properties: dict[str, Any]
    prompt_en: str | None = None  # kept only where the task has none yet
    prompt_urls: int | None = None  # None: as the task has it


# Settles many holds in one statement and one commit (migrations/0017).
_SETTLE = (
    "SELECT settle_holds($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[],"
    " $6::JSONB[], $7::TEXT[], $8::SMALLINT[]) AS id"
)

_RELEASE = """
WITH h AS (
    UPDATE holds SET status = 'RELEASED', resolved_at = now()
    WHERE id = $1 AND status = 'OPEN'
    RETURNING id, task_id, user_id, api_key_id, amount_units, key_limited
), u AS (
    UPDATE users SET balance_units = balance_units + h.amount_units, updated_at = now()
    FROM h WHERE users.id = h.user_id
    RETURNING users.id
), k AS (
    UPDATE api_keys SET quota_remaining_units = quota_remaining_units + h.amount_units
    FROM h
    WHERE api_keys.id = h.api_key_id AND h.key_limited
      AND api_keys.quota_remaining_units IS NOT NULL
    RETURNING api_keys.id
), t AS (
    UPDATE tasks SET status = $2, channel_id = coalesce($3, channel_id),
                     upstream_task_id = coalesce($4, upstream_task_id),
                     description = coalesce($5, description),
                     properties = properties || $6::JSONB,
                     prompt_urls = coalesce($8, prompt_urls),
                     price_units = CASE WHEN $2 = 'MODAL' THEN 0 ELSE price_units END,
                     updated_at = now()
    WHERE id = (SELECT task_id FROM h) AND status IN ('SUBMITTING', 'MODAL')
    RETURNING id
), l AS (
    INSERT INTO ledger
        (user_id, api_key_id, task_id, kind, amount_units, key_amount_units, source, reason)
    SELECT user_id, api_key_id, task_id, 'RELEASE', amount_units,
           CASE WHEN EXISTS (SELECT FROM k) THEN amount_units ELSE 0 END, 'hold:' || id, $7
    FROM h
)
SELECT count(*) FROM h
"""


async def settle_holds(pool: asyncpg.Pool, settles: Sequence[Settle]) -> set[int]:
    """Keep the charges: the tasks now exist upstream. Answers the ids of the holds settled now;
    a hold already resolved is left as it is."""
    rows = await pool.fetch(
        _SETTLE,
        [s.hold_id for s in settles],
        [s.status for s in settles],
        [s.channel_id for s in settles],
        [s.upstream_task_id for s in settles],
        [s.description for s in settles],
        [jsonb(s.properties) for s in settles],
        [s.prompt_en for s in settles],
        [s.prompt_urls for s in settles],
    )
    return {row["id"] for row in rows}


async def release_hold(
    pool: asyncpg.Pool,
    hold_id: int,
    task_status: str,
    reason: str,
    *,
    channel_id: int | None = None,
    upstream_task_id: str | None = None,
    description: str | None = None,
    properties: dict[str, Any] | None = None,
    prompt_urls: int | None = None,
) -> bool:
    """Give the held amount back and set the task's status (REJECTED, or MODAL when the charge
    moves to the /modal call). False if the hold was already resolved."""
    released = await pool.fetchval(
        _RELEASE,
        hold_id,
        task_status,
        channel_id,
        upstream_task_id,
        description,
        jsonb(properties or {}),
        reason,
        prompt_urls,
    )
    return bool(released)


async def forget_finished_holds(pool: asyncpg.Pool, older_than_s: float, limit: int) -> int:
    """Delete up to ``limit`` holds resolved over ``older_than_s`` ago whose tasks have ended.

    Nothing reads such a hold again: refunds read the settled hold of a task as it ends, and an
    ended task never changes. The ledger keeps every hold's amount and outcome (rows with the
    source ``hold:<id>``), and the reconciliation reads charges from there.
    """
    done: str = await pool.execute(
        "DELETE FROM holds WHERE id IN ("
        " SELECT h.id FROM holds h JOIN tasks t ON t.id = h.task_id"
        " WHERE h.status <> 'OPEN' AND h.resolved_at < now() - make_interval(secs => $1)"
        "   AND t.status IN ('SUCCESS', 'FAILURE', 'CANCEL', 'REJECTED')"
        " ORDER BY h.id LIMIT $2)",
        older_than_s,
        limit,
    )
    return int(done.split()[-1])


async def expired_holds(pool: asyncpg.Pool, limit: int) -> list[tuple[Held, str]]:
    """Open holds past their deadline, with their task's status, oldest first."""
    rows = await pool.fetch(
        "SELECT h.id, h.task_id, t.status FROM holds h JOIN tasks t ON t.id = h.task_id"
        " WHERE h.status = 'OPEN' AND h.deadline < now() ORDER BY h.deadline LIMIT $1",
        limit,
    )
    return [(Held(row["task_id"], row["id"]), row["status"]) for row in rows]
