"""Setting a user's and a key's rate limits: validated, stored, refused for unknown ids."""

from __future__ import annotations

import asyncpg
import pytest

from gateway import admin
from gateway.errors import BadRequest, NotFound
from gateway.storage import accounts

UNKNOWN_ID = 10**12


async def test_a_users_limits_are_stored_and_lifted(db_pool: asyncpg.Pool) -> None:
    user_id = await admin.create_user(db_pool, "alice")

    await admin.set_user_limits(db_pool, user_id, requests_per_minute=7, max_open_tasks=2)
    set_row = await db_pool.fetchrow(
        "SELECT requests_per_minute, max_open_tasks FROM users WHERE id = $1", user_id
    )
    await admin.set_user_limits(db_pool, user_id, requests_per_minute=None, max_open_tasks=None)
    lifted = await db_pool.fetchrow(
        "SELECT requests_per_minute, max_open_tasks FROM users WHERE id = $1", user_id
    )

    assert tuple(set_row) == (7, 2)
    assert tuple(lifted) == (None, None)


async def test_a_keys_limits_are_stored_and_reach_the_auth_lookup(db_pool: asyncpg.Pool) -> None:
    user_id = await admin.create_user(db_pool, "alice")
    issued = await admin.issue_key(db_pool, user_id)
    await admin.set_user_limits(db_pool, user_id, requests_per_minute=50, max_open_tasks=None)

    await admin.set_key_rate_limits(
        db_pool, issued.key_id, requests_per_minute=None, max_open_tasks=3
    )
    key_hash = await db_pool.fetchval("SELECT key_hash FROM api_keys WHERE id = $1", issued.key_id)
    record = await accounts.find_key(db_pool, key_hash)

    assert record is not None
    assert (record.requests_per_minute, record.max_open_tasks) == (None, 3)
    assert (record.user_requests_per_minute, record.user_max_open_tasks) == (50, None)


async def test_unknown_ids_are_not_found(db_pool: asyncpg.Pool) -> None:
    with pytest.raises(NotFound):
        await admin.set_user_limits(db_pool, UNKNOWN_ID, requests_per_minute=1, max_open_tasks=None)
    with pytest.raises(NotFound):
        await admin.set_key_rate_limits(
            db_pool, UNKNOWN_ID, requests_per_minute=None, max_open_tasks=1
        )


@pytest.mark.parametrize("bad", [0, -1, 2**31])
async def test_limits_out_of_range_are_refused(db_pool: asyncpg.Pool, bad: int) -> None:
    user_id = await admin.create_user(db_pool, "alice")
    key_id = (await admin.issue_key(db_pool, user_id)).key_id

    with pytest.raises(BadRequest):
        await admin.set_user_limits(db_pool, user_id, requests_per_minute=bad, max_open_tasks=None)
    with pytest.raises(BadRequest):
        await admin.set_user_limits(db_pool, user_id, requests_per_minute=None, max_open_tasks=bad)
    with pytest.raises(BadRequest):
        await admin.set_key_rate_limits(db_pool, key_id, requests_per_minute=bad, max_open_tasks=1)
    assert tuple(
        await db_pool.fetchrow(
            "SELECT requests_per_minute, max_open_tasks FROM users WHERE id = $1", user_id
        )
    ) == (None, None)


async def test_the_database_itself_refuses_a_limit_of_zero(db_pool: asyncpg.Pool) -> None:
    user_id = await admin.create_user(db_pool, "alice")

    with pytest.raises(asyncpg.CheckViolationError):
        await accounts.set_user_limits(db_pool, user_id, requests_per_minute=None, max_open_tasks=0)
