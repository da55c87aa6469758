"""What the upstream says of tasks, written: the open tasks to ask about, their updates applied
(with the refund a failure earns), tasks ended by the gateway, missing polls, overdue tasks and
the claims of channels' callbacks.

A task that has ended never changes again; a task whose hold is still open is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from gateway.domain import UpstreamTaskUpdate
from gateway.storage.tasks import jsonb

_decode = msgspec.json.decode  # JSONB columns, as asyncpg gives them: text


async def open_upstream_tasks(
    pool: asyncpg.Pool, limit: int, *, waiting_too: bool, young_since_ms: int, after_id: int = 0
) -> list[tuple[int, int, str]]:
    """(task id, channel id, upstream id) of tasks an upstream is still working on: the running
    ones and those submitted since ``young_since_ms``, and with ``waiting_too`` also the older
    ones still queued upstream or awaiting a modal. The first ``limit`` by id past ``after_id``.

    A task whose hold is still open (a /modal call in flight) is left alone until the submit
    path has settled or released it, so a poll can never end a task before its charge is known.

    The statuses are written out, not a parameter, so that every plan of the statement (a
    prepared one too) reads the partial index of open tasks, not every task by id.
    """
    rows = await pool.fetch(
        "SELECT id, channel_id, upstream_task_id FROM tasks t"
        " WHERE status IN ('NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS')"
        " AND upstream_task_id IS NOT NULL"
        " AND ($1 OR status = 'IN_PROGRESS' OR submit_time_ms >= $2)"
        " AND NOT EXISTS (SELECT FROM holds h WHERE h.task_id = t.id AND h.status = 'OPEN')"
        " AND id > $3 ORDER BY id LIMIT $4",
        waiting_too,
        young_since_ms,
        after_id,
        limit,
    )
    return [(row["id"], row["channel_id"], row["upstream_task_id"]) for row in rows]


@dataclass(frozen=True, slots=True)
class Ended:
    """A task that ended in a write: which, how, what it was, and how long after its submit."""

    task_id: int
    status: str
    price_action: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Written:
    """What a write of upstream news did: tasks changed, tasks that ended now, and the refunds
    those ends earned (units by priced action)."""

    changed: int
    finished: list[Ended]
    refunded: int
    refunded_units: dict[str, int]


# The result row of a statement whose CTE ``t`` (id, status, price_action, submit_time_ms)
# holds the tasks it changed, and ``refund`` (task_id, amount_units) the refunds it wrote.
_WRITTEN = """
SELECT (SELECT count(*) FROM t) AS changed,
       (SELECT coalesce(array_agg(ARRAY[id::TEXT, status, price_action,
                                        ((extract(epoch FROM now()) * 1000)::BIGINT
                                         - submit_time_ms)::TEXT]), '{}')
        FROM t WHERE status IN ('SUCCESS', 'FAILURE', 'CANCEL')) AS ended,
       (SELECT count(*) FROM refund) AS refunded,
       (SELECT coalesce(jsonb_object_agg(price_action, units), '{}')::TEXT
        FROM (SELECT t.price_action, sum(r.amount_units) AS units
              FROM refund r JOIN t ON t.id = r.task_id GROUP BY 1) a) AS refunded_units
"""


def _written(row: asyncpg.Record) -> Written:
    ended = [
        Ended(int(task_id), status, action, int(ms) / 1000)
        for task_id, status, action, ms in row["ended"]
    ]
    refunded = {action: int(units) for action, units in _decode(row["refunded_units"]).items()}
    return Written(row["changed"], ended, row["refunded"], refunded)


# Refunds the settled charge of every task in ``t`` (id, status) that now is FAILURE or CANCEL,
# to the user and to the key if it was debited and still has a limit, at most once per task
# ever (the ledger's unique source).
_REFUND_ENDED = """refundable AS (
    SELECT h.task_id, h.user_id, h.api_key_id, h.amount_units, t.status,
           h.key_limited AND k.quota_remaining_units IS NOT NULL AS key_limited
    FROM holds h JOIN t ON h.task_id = t.id JOIN api_keys k ON k.id = h.api_key_id
    WHERE h.status = 'SETTLED' AND t.status IN ('FAILURE', 'CANCEL')
), refund AS (
    INSERT INTO ledger
        (user_id, api_key_id, task_id, kind, amount_units, key_amount_units, source, reason)
    SELECT user_id, api_key_id, task_id, 'REFUND', amount_units,
           CASE WHEN key_limited THEN amount_units ELSE 0 END, 'task:' || task_id, status
    FROM refundable
    ON CONFLICT (source, kind) DO NOTHING
    RETURNING task_id, user_id, api_key_id, amount_units, key_amount_units
), refund_user AS (
    UPDATE users SET balance_units = balance_units + r.amount_units, updated_at = now()
    FROM (SELECT user_id, sum(amount_units) AS amount_units FROM refund GROUP BY user_id) r
    WHERE users.id = r.user_id
), refund_key AS (
    UPDATE api_keys SET quota_remaining_units = quota_remaining_units + r.key_amount_units
    FROM (SELECT api_key_id, sum(key_amount_units) AS key_amount_units FROM refund
          GROUP BY api_key_id) r
    WHERE api_keys.id = r.api_key_id AND r.key_amount_units > 0
      AND api_keys.quota_remaining_units IS NOT NULL
)"""

# One statement for a batch of upstream task objects, one row of arrays per task. The gateway's
# action, prompt and description are its own from the submit on; the upstream's fill in what it
# has not set (a describe's suggestions; a follow-up's description once its modal is confirmed).
# The upstream's description names upstream task ids ("/action <id> MJ::JOB::..."): they are
# rewritten to the gateway's ids of the task and of its parent. The image URLs the upstream puts
# in front of prompts (``prompt_urls``) are taken off.
_APPLY_UPDATES = f"""
WITH u AS (
    SELECT * FROM unnest(
        $1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[],
        $8::BIGINT[], $9::BIGINT[], $10::TEXT[], $11::TEXT[], $12::JSONB[], $13::JSONB[],
        $14::JSONB[]
    ) AS u(id, status, progress, action, prompt, prompt_en, description, start_time_ms,
           finish_time_ms, image_url, fail_reason, buttons, properties, media)
), ids AS (
    SELECT c.id, c.upstream_task_id AS own, coalesce(p.id, c.id) AS parent_id,
           coalesce(p.upstream_task_id, c.upstream_task_id) AS parent_own
    FROM tasks c LEFT JOIN tasks p ON p.id = c.parent_id
    WHERE c.id IN (SELECT id FROM u)
), t AS (
    UPDATE tasks SET
        status = u.status, progress = u.progress, action = coalesce(tasks.action, u.action),
        prompt = coalesce(tasks.prompt, without_leading_urls(u.prompt, tasks.prompt_urls)),
        prompt_en = coalesce(without_leading_urls(u.prompt_en, tasks.prompt_urls),
                             tasks.prompt_en),
        description = coalesce(
            tasks.description,
            replace(replace(u.description, ids.own, ids.id::TEXT),
                    ids.parent_own, ids.parent_id::TEXT)),
        start_time_ms = coalesce(u.start_time_ms, tasks.start_time_ms),
        finish_time_ms = coalesce(u.finish_time_ms, tasks.finish_time_ms),
        upstream_image_url = coalesce(u.image_url, tasks.upstream_image_url),
        fail_reason = u.fail_reason, buttons = u.buttons,
        properties = CASE WHEN u.properties ? 'finalPrompt' AND tasks.prompt_urls > 0
            THEN tasks.properties || u.properties || jsonb_build_object('finalPrompt',
                without_leading_urls(u.properties ->> 'finalPrompt', tasks.prompt_urls))
            ELSE tasks.properties || u.properties END,
        upstream_media = tasks.upstream_media || u.media,
        missing_polls = 0, updated_at = now()
    FROM u JOIN ids ON ids.id = u.id
    WHERE tasks.id = u.id
      -- NOT_START, SUBMITTED, MODAL or IN_PROGRESS, named by what it is not (as in
      -- settle_holds, migrations/0017): the batch's tasks are looked up by id
      AND tasks.status NOT IN ('SUBMITTING', 'REJECTED', 'SUCCESS', 'FAILURE', 'CANCEL')
      AND NOT EXISTS (SELECT FROM holds h WHERE h.task_id = tasks.id AND h.status = 'OPEN')
      AND (tasks.status, tasks.progress, tasks.upstream_image_url, tasks.fail_reason,
           tasks.buttons, tasks.missing_polls)
          IS DISTINCT FROM (u.status, u.progress, coalesce(u.image_url, tasks.upstream_image_url),
                            u.fail_reason, u.buttons, 0)
    RETURNING tasks.id, tasks.status, tasks.price_action, tasks.submit_time_ms,
              tasks.upstream_image_url
), copy AS (
    INSERT INTO media_copies (task_id)
    SELECT id FROM t WHERE status = 'SUCCESS' AND upstream_image_url IS NOT NULL
    ON CONFLICT DO NOTHING
), {_REFUND_ENDED}
{_WRITTEN}
"""


async def apply_upstream_updates(
    pool: asyncpg.Pool, updates: Sequence[tuple[int, UpstreamTaskUpdate]]
) -> Written:
    """Write what the upstream says of open tasks, (task id, update) pairs.

    A task already ended is never changed. Ending in FAILURE or CANCEL refunds its settled
    charge to the user and the key's limit in the same statement, at most once ever; ending in
    SUCCESS with a result queues its copy into the media store (``gateway.media.copier``).
    """
    if not updates:
        return Written(0, [], 0, {})
    columns: list[list[Any]] = [[] for _ in range(14)]
    for task_id, update in updates:
        values = (
            task_id,
            update.status,
            update.progress,
            update.action,
            update.prompt,
            update.prompt_en,
            update.description,
            update.start_time_ms,
            update.finish_time_ms,
            update.image_url,
            update.fail_reason,
            jsonb(update.buttons),
            jsonb(update.properties),
            jsonb(update.media),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    (row,) = await pool.fetch(_APPLY_UPDATES, *columns)
    return _written(row)


_END_TASKS = f"""
WITH t AS (
    UPDATE tasks SET status = $2, progress = '', fail_reason = $3,
                     finish_time_ms = (extract(epoch FROM now()) * 1000)::BIGINT,
                     updated_at = now()
    WHERE id = ANY($1::BIGINT[])
      AND status IN ('NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS')
      AND NOT EXISTS (SELECT FROM holds h WHERE h.task_id = tasks.id AND h.status = 'OPEN')
    RETURNING id, status, price_action, submit_time_ms
), {_REFUND_ENDED}
{_WRITTEN}
"""


async def end_tasks(
    pool: asyncpg.Pool, task_ids: Sequence[int], status: str, reason: str
) -> Written:
    """End open tasks as ``status`` (FAILURE or CANCEL) with ``reason``, refunding each once.
    Tasks already ended are left as they are."""
    (row,) = await pool.fetch(_END_TASKS, list(task_ids), status, reason)
    return _written(row)


async def count_missing(pool: asyncpg.Pool, missing_ids: Sequence[int], limit: int) -> list[int]:
    """Count one more poll that did not find these tasks upstream; those at ``limit`` now."""
    rows = await pool.fetch(
        "UPDATE tasks SET missing_polls = missing_polls + 1 WHERE id = ANY($1::BIGINT[])"
        " AND status IN ('NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS')"
        " RETURNING id, missing_polls",
        list(missing_ids),
    )
    return [row["id"] for row in rows if row["missing_polls"] >= limit]


async def overdue_tasks(
    pool: asyncpg.Pool, now_ms: int, timeout_s: float, timeouts_s: dict[str, float], limit: int
) -> list[int]:
    """Open tasks (whose hold, if any, is resolved) submitted longer ago than their action's
    timeout (``timeouts_s`` by action, else ``timeout_s``)."""
    rows = await pool.fetch(
        "SELECT id FROM tasks t"
        " LEFT JOIN unnest($3::TEXT[], $4::FLOAT8[]) AS o (action, timeout_s)"
        "   ON o.action = t.action"
        " WHERE status IN ('NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS')"
        " AND submit_time_ms < $1 - (coalesce(o.timeout_s, $2) * 1000)::BIGINT"
        " AND NOT EXISTS (SELECT FROM holds h WHERE h.task_id = t.id AND h.status = 'OPEN')"
        " ORDER BY id LIMIT $5",
        now_ms,
        timeout_s,
        list(timeouts_s),
        list(timeouts_s.values()),
        limit,
    )
    return [row["id"] for row in rows]


async def record_claim(
    pool: asyncpg.Pool, task_id: int, channel_id: int, upstream_task_id: str
) -> None:
    """Keep what a channel's callback said of a task whose submit answer was never seen."""
    await pool.execute(
        "INSERT INTO upstream_claims (task_id, channel_id, upstream_task_id) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        task_id,
        channel_id,
        upstream_task_id,
    )


async def claims(pool: asyncpg.Pool, task_id: int) -> list[tuple[int, str]]:
    """(channel id, upstream task id) of every claim on a task, oldest first."""
    rows = await pool.fetch(
        "SELECT channel_id, upstream_task_id FROM upstream_claims WHERE task_id = $1"
        " ORDER BY created_at",
        task_id,
    )
    return [(row["channel_id"], row["upstream_task_id"]) for row in rows]
