"""What is waiting, for the gauges: open holds, open and in-flight tasks by channel, undelivered
webhooks."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


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
        "SELECT t.channel_id, count(*) AS open,"
        " count(*) FILTER (WHERE task_in_flight(t)) AS in_flight FROM tasks t"
        " WHERE t.status IN ('SUBMITTING', 'NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS')"
        " GROUP BY t.channel_id"
    )
    assert row is not None
    return Backlog(
        row["holds_open"],
        row["past"],
        row["webhooks"],
        {r["channel_id"]: r["open"] for r in rows},
        {r["channel_id"]: r["in_flight"] for r in rows if r["channel_id"] is not None},
    )
