"""The media store's records: copy jobs (``media_copies``) and stored objects
(``media_objects``), one row per task and part (migrations/0012)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class StoredObject:
    task_id: int
    part: str
    store_key: str
    size_bytes: int
    content_type: str
    sha256: str
    stored_at: datetime


@dataclass(frozen=True, slots=True)
class Claimed:
    task_id: int
    attempt: int  # 1 for the first


async def claim_copies(
    pool: asyncpg.Pool, limit: int, claim_s: float, max_attempts: int
) -> list[Claimed]:
    """Take up to ``limit`` due copy jobs for ``claim_s`` seconds, counting an attempt each; a
    job another process holds (its claim not yet lapsed) is left to it. A job whose claims have
    lapsed ``max_attempts`` times (its copier died each time) ends FAILED instead."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE media_copies SET status = 'FAILED', claimed_until = NULL,"
            " last_error = 'given up: every copier that took it stopped before it ended'"
            " WHERE status = 'PENDING' AND attempts >= $1 AND claimed_until < now()",
            max_attempts,
        )
        rows = await conn.fetch(
            "UPDATE media_copies SET claimed_until = now() + make_interval(secs => $2),"
            " attempts = attempts + 1"
            " WHERE task_id IN (SELECT task_id FROM media_copies"
            "   WHERE status = 'PENDING' AND next_attempt_at <= now() AND attempts < $3"
            "   AND (claimed_until IS NULL OR claimed_until < now())"
            "   ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
            " RETURNING task_id, attempts",
            limit,
            claim_s,
            max_attempts,
        )
    return [Claimed(row["task_id"], row["attempts"]) for row in rows]


async def record_object(pool: asyncpg.Pool, stored: StoredObject) -> None:
    """Note a stored object; one already noted for the task and part stays as it is."""
    await pool.execute(
        "INSERT INTO media_objects (task_id, part, store_key, size_bytes, content_type, sha256)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        stored.task_id,
        stored.part,
        stored.store_key,
        stored.size_bytes,
        stored.content_type,
        stored.sha256,
    )


def _stored(row: asyncpg.Record) -> StoredObject:
    return StoredObject(**dict(row))


_OBJECT_COLUMNS = "task_id, part, store_key, size_bytes, content_type, sha256, stored_at"


async def find_object(pool: asyncpg.Pool, task_id: int, part: str) -> StoredObject | None:
    row = await pool.fetchrow(
        f"SELECT {_OBJECT_COLUMNS} FROM media_objects WHERE task_id = $1 AND part = $2",
        task_id,
        part,
    )
    return _stored(row) if row else None


async def task_objects(pool: asyncpg.Pool, task_id: int) -> dict[str, StoredObject]:
    rows = await pool.fetch(
        f"SELECT {_OBJECT_COLUMNS} FROM media_objects WHERE task_id = $1", task_id
    )
    return {row["part"]: _stored(row) for row in rows}


async def finish_copy(pool: asyncpg.Pool, task_id: int) -> float | None:
    """Mark a job DONE: the seconds from its queueing (the task's SUCCESS) to now; None if it
    was not pending (done meanwhile)."""
    lag: float | None = await pool.fetchval(
        "UPDATE media_copies SET status = 'DONE', done_at = now(), claimed_until = NULL,"
        " last_error = NULL WHERE task_id = $1 AND status = 'PENDING'"
        " RETURNING extract(epoch FROM now() - created_at)::FLOAT8",
        task_id,
    )
    return lag


async def retry_copy(pool: asyncpg.Pool, task_id: int, error: str, delay_s: float) -> None:
    await pool.execute(
        "UPDATE media_copies SET next_attempt_at = now() + make_interval(secs => $3),"
        " claimed_until = NULL, last_error = $2 WHERE task_id = $1 AND status = 'PENDING'",
        task_id,
        error,
        delay_s,
    )


async def fail_copy(pool: asyncpg.Pool, task_id: int, error: str) -> None:
    await pool.execute(
        "UPDATE media_copies SET status = 'FAILED', claimed_until = NULL, last_error = $2"
        " WHERE task_id = $1 AND status = 'PENDING'",
        task_id,
        error,
    )


@dataclass(frozen=True, slots=True)
class Totals:
    objects: int
    bytes: int
    by_type: dict[str, tuple[int, int]]  # content type -> (objects, bytes)
    copies: dict[str, int]  # job status -> count


async def totals(pool: asyncpg.Pool) -> Totals:
    """What the store holds and where the copy jobs stand (reads both tables whole)."""
    rows = await pool.fetch(
        "SELECT content_type, count(*) AS n, coalesce(sum(size_bytes), 0)::BIGINT AS size"
        " FROM media_objects GROUP BY content_type ORDER BY content_type"
    )
    by_type = {row["content_type"]: (row["n"], row["size"]) for row in rows}
    copies = await pool.fetchval(
        "SELECT coalesce(jsonb_object_agg(status, n), '{}')::TEXT"
        " FROM (SELECT status, count(*) AS n FROM media_copies GROUP BY status) s"
    )
    return Totals(
        objects=sum(n for n, _ in by_type.values()),
        bytes=sum(size for _, size in by_type.values()),
        by_type=by_type,
        copies=json.loads(copies),
    )


async def requeue(pool: asyncpg.Pool, task_ids: list[int]) -> int:
    """Copy these tasks' results again (their missing parts), from now; new jobs where there
    were none. Tasks whose media retention deleted are left alone. The count queued."""
    result: str = await pool.execute(
        "INSERT INTO media_copies (task_id) SELECT id FROM tasks"
        " WHERE id = ANY($1::BIGINT[]) AND status = 'SUCCESS' AND media_deleted_at IS NULL"
        " ON CONFLICT (task_id) DO UPDATE SET status = 'PENDING', attempts = 0,"
        " next_attempt_at = now(), claimed_until = NULL, last_error = NULL, done_at = NULL,"
        " created_at = now()",
        task_ids,
    )
    return int(result.rsplit(" ", 1)[-1])


async def forget_copy_jobs(
    pool: asyncpg.Pool, older_than_s: float, *, pending_too: bool, limit: int
) -> int:
    """Forget up to ``limit`` copy jobs that were done more than ``older_than_s`` ago (what
    they stored is recorded in ``media_objects``), and, with ``pending_too`` (media not kept),
    pending jobs as old, which nothing will ever do. Failed jobs stay, for ``refetch``."""
    result: str = await pool.execute(
        "DELETE FROM media_copies WHERE ctid IN (SELECT ctid FROM media_copies"
        " WHERE (status = 'DONE' AND done_at < now() - make_interval(secs => $1))"
        " OR ($2 AND status = 'PENDING' AND created_at < now() - make_interval(secs => $1))"
        " LIMIT $3)",
        older_than_s,
        pending_too,
        limit,
    )
    return int(result.rsplit(" ", 1)[-1])


async def failed_copies(pool: asyncpg.Pool, limit: int) -> list[int]:
    rows = await pool.fetch(
        "SELECT task_id FROM media_copies WHERE status = 'FAILED' ORDER BY task_id LIMIT $1",
        limit,
    )
    return [row["task_id"] for row in rows]


async def objects_page(
    pool: asyncpg.Pool, after: tuple[int, str], limit: int
) -> list[StoredObject]:
    """Stored objects in (task id, part) order, after ``after``: to walk the whole store."""
    rows = await pool.fetch(
        f"SELECT {_OBJECT_COLUMNS} FROM media_objects WHERE (task_id, part) > ($1, $2)"
        " ORDER BY task_id, part LIMIT $3",
        after[0],
        after[1],
        limit,
    )
    return [_stored(row) for row in rows]


async def forget_objects(pool: asyncpg.Pool, objects: list[StoredObject]) -> None:
    """Drop the records of objects no longer in the store (missing, or deleted by retention)."""
    await pool.execute(
        "DELETE FROM media_objects m USING unnest($1::BIGINT[], $2::TEXT[]) AS g (task_id, part)"
        " WHERE m.task_id = g.task_id AND m.part = g.part",
        [o.task_id for o in objects],
        [o.part for o in objects],
    )


async def expired_objects(
    pool: asyncpg.Pool, older_than_s: float, limit: int
) -> list[StoredObject]:
    rows = await pool.fetch(
        f"SELECT {_OBJECT_COLUMNS} FROM media_objects"
        " WHERE stored_at < now() - make_interval(secs => $1) ORDER BY stored_at LIMIT $2",
        older_than_s,
        limit,
    )
    return [_stored(row) for row in rows]


async def note_media_deleted(pool: asyncpg.Pool, task_ids: list[int]) -> None:
    await pool.execute(
        "UPDATE tasks SET media_deleted_at = now() WHERE id = ANY($1::BIGINT[])"
        " AND media_deleted_at IS NULL",
        task_ids,
    )
