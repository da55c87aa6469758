"""What the web console keeps in PostgreSQL: passwords, the operator mark, invitations; and the
console's own reads: what each task cost, and the operator's overview."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """The signed-in user, read again on every page (so a disabled user is out at once)."""

    id: int
    name: str
    group_name: str
    balance_units: int
    enabled: bool
    operator: bool
    webhook_secret: str


async def console_user(pool: asyncpg.Pool, user_id: int) -> ConsoleUser | None:
    row = await pool.fetchrow(
        "SELECT id, name, group_name, balance_units, enabled, operator, webhook_secret"
        " FROM users WHERE id = $1",
        user_id,
    )
    return ConsoleUser(**dict(row)) if row else None


async def sign_in_record(pool: asyncpg.Pool, name: str) -> tuple[int, str | None, bool] | None:
    """(user id, password hash, enabled) of the user of that name, or None."""
    row = await pool.fetchrow("SELECT id, password_hash, enabled FROM users WHERE name = $1", name)
    return (row["id"], row["password_hash"], row["enabled"]) if row else None


async def password_hash(pool: asyncpg.Pool, user_id: int) -> str | None:
    found: str | None = await pool.fetchval(
        "SELECT password_hash FROM users WHERE id = $1", user_id
    )
    return found


async def set_password_hash(pool: asyncpg.Pool, user_id: int, hashed: str) -> bool:
    done = await pool.fetchval(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1 RETURNING TRUE",
        user_id,
        hashed,
    )
    return bool(done)


async def set_operator(pool: asyncpg.Pool, user_id: int, operator: bool) -> bool:
    done = await pool.fetchval(
        "UPDATE users SET operator = $2, updated_at = now() WHERE id = $1 RETURNING TRUE",
        user_id,
        operator,
    )
    return bool(done)


async def add_invitation(
    pool: asyncpg.Pool, token_hash: bytes, user_id: int, expires_at: datetime
) -> None:
    await pool.execute(
        "INSERT INTO console_invitations (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        user_id,
        expires_at,
    )


async def invitation_user(pool: asyncpg.Pool, token_hash: bytes) -> tuple[int, str] | None:
    """(user id, name) of an invitation still to be taken, or None."""
    row = await pool.fetchrow(
        "SELECT u.id, u.name FROM console_invitations i JOIN users u ON u.id = i.user_id"
        " WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.expires_at > now()",
        token_hash,
    )
    return (row["id"], row["name"]) if row else None


async def take_invitation(pool: asyncpg.Pool, token_hash: bytes, hashed: str) -> int | None:
    """Set the invited user's password and spend the invitation, both or neither; the user's
    id, or None when the invitation is unknown, spent or expired."""
    user_id: int | None = await pool.fetchval(
        """
        WITH i AS (
            UPDATE console_invitations SET used_at = now()
            WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
            RETURNING user_id
        )
        UPDATE users SET password_hash = $2, updated_at = now()
        FROM i WHERE users.id = i.user_id
        RETURNING users.id
        """,
        token_hash,
        hashed,
    )
    return user_id


@dataclass(frozen=True, slots=True)
class TaskMoney:
    charged_units: int  # held, then kept or given back
    refunded_units: int  # given back (a failure's refund or a released hold)


async def task_money(
    pool: asyncpg.Pool, user_id: int, task_ids: Sequence[int]
) -> dict[int, TaskMoney]:
    """What each of the user's tasks took from the balance and what came back, from the ledger."""
    rows = await pool.fetch(
        "SELECT task_id,"
        "  coalesce(-sum(amount_units) FILTER (WHERE kind = 'HOLD'), 0)::BIGINT AS charged,"
        "  coalesce(sum(amount_units) FILTER (WHERE kind IN ('REFUND', 'RELEASE')), 0)::BIGINT"
        "    AS refunded"
        " FROM ledger WHERE user_id = $1 AND task_id = ANY($2::BIGINT[]) GROUP BY task_id",
        user_id,
        list(task_ids),
    )
    return {row["task_id"]: TaskMoney(row["charged"], row["refunded"]) for row in rows}


@dataclass(frozen=True, slots=True)
class Overview:
    """The last hour and now, from the gateway's own records."""

    submits: int  # tasks asked for in the last hour, refused ones included
    rejected: int  # of those, never accepted upstream
    failed: int  # of those, ended FAILURE
    succeeded: int
    open_tasks: int
    open_holds: int
    open_hold_units: int
    users: int
    balance_units: int  # what all users hold


async def overview(pool: asyncpg.Pool, since_ms: int) -> Overview:
    row = await pool.fetchrow(
        """
        SELECT
          count(*) AS submits,
          count(*) FILTER (WHERE status = 'REJECTED') AS rejected,
          count(*) FILTER (WHERE status = 'FAILURE') AS failed,
          count(*) FILTER (WHERE status = 'SUCCESS') AS succeeded,
          (SELECT count(*) FROM tasks WHERE status IN
             ('SUBMITTING', 'NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS')) AS open_tasks,
          (SELECT count(*) FROM holds WHERE status = 'OPEN') AS open_holds,
          (SELECT coalesce(sum(amount_units), 0) FROM holds WHERE status = 'OPEN')::BIGINT
             AS open_hold_units,
          (SELECT count(*) FROM users) AS users,
          (SELECT coalesce(sum(balance_units), 0) FROM users)::BIGINT AS balance_units
        FROM tasks WHERE id >= $1::BIGINT * 1000
        """,
        since_ms,
    )
    return Overview(**dict(row or {}))


async def open_tasks_by_channel(pool: asyncpg.Pool) -> dict[int, int]:
    """Tasks not yet ended, by the channel that has them (the channel's work in flight)."""
    rows = await pool.fetch(
        "SELECT channel_id, count(*) AS n FROM tasks"
        " WHERE status IN ('SUBMITTING', 'NOT_START', 'SUBMITTED', 'MODAL', 'IN_PROGRESS')"
        "   AND channel_id IS NOT NULL"
        " GROUP BY channel_id"
    )
    return {row["channel_id"]: row["n"] for row in rows}
