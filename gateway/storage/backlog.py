"""What is waiting, for the gauges: open holds, open tasks by channel, undelivered webhooks."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from gateway.storage.slots import IN_FLIGHT


@dataclass(frozen=True, slots=True)
class Backlog:
    holds_open: int
    holds_past_deadline: int
    webhooks_pending: int
    tasks_open: dict[int | None, int]  # by channel id; None: not yet at a channel
    in_flight: dict[int, int]  # by channel id, as its cap counts (``gateway.storage.slots``)


async def backlog(pool: asyncpg.Pool) -> Backlog:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM holds WHERE status = 'OPEN') AS holds_open,"
        " (SELECT count(*) FROM holds WHERE status = 'OPEN' AND deadline < now()) AS past,"
        " (SELECT count(*) FROM webhook_outbox"
        "  WHERE delivered_at IS NULL AND given_up_at IS NULL) AS webhooks"
    )
    rows = await pool.fetch(
        "SELECT channel_id, count(*) FROM tasks"
        " WHERE status IN ('SUBMITTING', 'NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS')"
        " GROUP BY channel_id"
    )
    flying = await pool.fetch(
        f"SELECT t.channel_id, count(*) FROM tasks t WHERE {IN_FLIGHT} GROUP BY t.channel_id"
    )
    assert row is not None
    return Backlog(
        row["holds_open"],
        row["past"],
        row["webhooks"],
        {r["channel_id"]: r["count"] for r in rows},
        {r["channel_id"]: r["count"] for r in flying},
    )
