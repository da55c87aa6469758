"""The webhook outbox (migrations/0005): claiming due events, and recording what became of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway.domain import Task
from gateway.storage.tasks import TASK_FIELDS


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: int
    url: str
    task: Task  # as it was at the change this event tells
    attempts: int  # this one included
    created_at: datetime
    secret: str  # the user's webhook secret, which signs it


# The oldest pending event of each task is its head; only due heads are taken, each leased (its
# next attempt moved past the lease) so no other deliverer takes it meanwhile.
_CLAIM = """
WITH heads AS (
    SELECT DISTINCT ON (task_id) id FROM webhook_outbox
    WHERE delivered_at IS NULL AND given_up_at IS NULL
    ORDER BY task_id, id
), due AS (
    SELECT o.id FROM webhook_outbox o JOIN heads ON heads.id = o.id
    WHERE o.next_attempt_at <= now()
    ORDER BY o.next_attempt_at
    LIMIT $1
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE webhook_outbox o
SET next_attempt_at = now() + make_interval(secs => $2), attempts = o.attempts + 1
FROM due, tasks t, users u
WHERE o.id = due.id AND t.id = o.task_id AND u.id = t.user_id
RETURNING o.id, o.url, o.task, o.attempts, o.created_at, u.webhook_secret
"""


def _task(snapshot: str) -> Task:
    row: dict[str, Any] = json.loads(snapshot)
    return Task(**{name: row[name] for name in TASK_FIELDS if name in row})


async def claim_due(pool: asyncpg.Pool, limit: int, lease_s: float) -> list[WebhookEvent]:
    rows = await pool.fetch(_CLAIM, limit, lease_s)
    return [
        WebhookEvent(
            row["id"],
            row["url"],
            _task(row["task"]),
            row["attempts"],
            row["created_at"],
            row["webhook_secret"],
        )
        for row in rows
    ]


async def delivered(pool: asyncpg.Pool, event_id: int) -> None:
    await pool.execute(
        "UPDATE webhook_outbox SET delivered_at = now(), last_error = NULL WHERE id = $1",
        event_id,
    )


async def retry_later(pool: asyncpg.Pool, event_id: int, delay_s: float, error: str) -> None:
    await pool.execute(
        "UPDATE webhook_outbox SET next_attempt_at = now() + make_interval(secs => $2),"
        " last_error = $3 WHERE id = $1",
        event_id,
        delay_s,
        error,
    )


async def give_up(pool: asyncpg.Pool, event_id: int, error: str) -> None:
    await pool.execute(
        "UPDATE webhook_outbox SET given_up_at = now(), last_error = $2 WHERE id = $1",
        event_id,
        error,
    )


async def purge_finished(pool: asyncpg.Pool, older_than_s: float) -> int:
    """Forget delivered and abandoned events older than ``older_than_s``."""
    done: str = await pool.execute(
        "DELETE FROM webhook_outbox WHERE (delivered_at IS NOT NULL OR given_up_at IS NOT NULL)"
        " AND created_at < now() - make_interval(secs => $1)",
        older_than_s,
    )
    return int(done.split()[-1])
