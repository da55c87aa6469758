"""Task reads: a client's own tasks, the operator's search, and the columns they read.

Clients never see REJECTED rows (submits that made no upstream task).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from gateway.domain import Task
from gateway.storage.filters import Filters

TASK_COLUMNS = """
    id, user_id, api_key_id, parent_id, channel_id, upstream_task_id, action, price_action, mode,
    bot_type, price_units, status, progress, prompt, prompt_en, description, state, notify_hook,
    submit_time_ms, start_time_ms, finish_time_ms, upstream_image_url, fail_reason, buttons,
    properties, prompt_urls, upstream_media
"""

TASK_FIELDS = tuple(name.strip() for name in TASK_COLUMNS.split(","))

# What the media store holds of a task (part -> store key), read with it.
_TASK = f"""{TASK_COLUMNS},
    (SELECT jsonb_object_agg(part, store_key) FROM media_objects m WHERE m.task_id = tasks.id)
        AS stored_media,
    EXISTS (SELECT FROM media_copies c WHERE c.task_id = tasks.id AND c.status = 'PENDING')
        AS media_pending
"""

_POLLED_STATUSES = ["NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS"]
OPEN_STATUSES = ["SUBMITTING", *_POLLED_STATUSES]
_decode = msgspec.json.decode  # JSONB columns, as asyncpg gives them: text

ENDED_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCEL"})  # a task that ended never changes


def task_from_row(row: asyncpg.Record) -> Task:
    fields = dict(row)
    fields["buttons"] = _decode(fields["buttons"])
    fields["properties"] = _decode(fields["properties"])
    fields["upstream_media"] = _decode(fields["upstream_media"])
    fields["stored_media"] = _decode(fields.get("stored_media") or "{}")
    return Task(**fields)


async def get_task(pool: asyncpg.Pool, task_id: int) -> Task | None:
    row = await pool.fetchrow(f"SELECT {_TASK} FROM tasks WHERE id = $1", task_id)
    return task_from_row(row) if row else None


async def get_user_task(pool: asyncpg.Pool, task_id: int, user_id: int) -> Task | None:
    """The user's task, or None when it is unknown, someone else's, or never reached upstream."""
    row = await pool.fetchrow(
        f"SELECT {_TASK} FROM tasks WHERE id = $1 AND user_id = $2 AND status <> 'REJECTED'",
        task_id,
        user_id,
    )
    return task_from_row(row) if row else None


async def list_recent(pool: asyncpg.Pool, user_id: int, limit: int) -> list[Task]:
    rows = await pool.fetch(
        f"SELECT {_TASK} FROM tasks"
        " WHERE user_id = $1 AND status NOT IN ('REJECTED', 'SUBMITTING')"
        " ORDER BY id DESC LIMIT $2",
        user_id,
        limit,
    )
    return [task_from_row(row) for row in rows]


async def list_by_ids(pool: asyncpg.Pool, user_id: int, ids: Sequence[int]) -> list[Task]:
    """The user's tasks among ``ids``, in no particular order."""
    rows = await pool.fetch(
        f"SELECT {_TASK} FROM tasks"
        " WHERE id = ANY($1::BIGINT[]) AND user_id = $2 AND status <> 'REJECTED'",
        list(ids),
        user_id,
    )
    return [task_from_row(row) for row in rows]


async def ended_tasks(pool: asyncpg.Pool, ids: Sequence[int]) -> list[Task]:
    """The tasks among ``ids`` that have ended, in no particular order."""
    rows = await pool.fetch(
        f"SELECT {_TASK} FROM tasks"
        " WHERE id = ANY($1::BIGINT[]) AND status IN ('SUCCESS', 'FAILURE', 'CANCEL')",
        list(ids),
    )
    return [task_from_row(row) for row in rows]


@dataclass(frozen=True, slots=True)
class TaskSearch:
    """The operator's task search; every filter optional. Times are epoch ms, [since, until)."""

    user_id: int | None = None
    api_key_id: int | None = None
    channel_id: int | None = None
    status: str | None = None
    action: str | None = None
    open_only: bool = False  # only tasks not yet ended
    client_visible: bool = False  # leave out what clients never see (REJECTED, SUBMITTING)
    since_ms: int | None = None
    until_ms: int | None = None
    before_id: int | None = None  # the page cursor: ids below this one
    limit: int = 100


async def search_tasks(pool: asyncpg.Pool, search: TaskSearch) -> list[Task]:
    """Tasks matching ``search``, newest first. A task id starts with its submit time in epoch
    ms (``next_task_id()``), so a time range is an id range on the indexes that lead with ids.
    Only the filters given are in the statement, so each shape gets a plan that uses its index."""
    where = Filters()
    where.add("user_id = {}", search.user_id)
    where.add("api_key_id = {}", search.api_key_id)
    where.add("channel_id = {}", search.channel_id)
    where.add("status = {}", search.status)
    where.add("action = {}", search.action)
    if search.open_only:
        where.add("status = ANY({}::TEXT[])", OPEN_STATUSES)
    if search.client_visible:
        where.add("status <> ALL({}::TEXT[])", ["REJECTED", "SUBMITTING"])
    where.add("id >= {}::BIGINT * 1000", search.since_ms)
    where.add("id < {}::BIGINT * 1000", search.until_ms)
    where.add("id < {}", search.before_id)
    rows = await pool.fetch(
        f"SELECT {_TASK} FROM tasks {where.sql} ORDER BY id DESC LIMIT {where.next}",
        *where.args,
        search.limit,
    )
    return [task_from_row(row) for row in rows]


def jsonb(value: Any) -> str:
    """``value`` as JSON text for a JSONB parameter."""
    return msgspec.json.encode(value).decode()
