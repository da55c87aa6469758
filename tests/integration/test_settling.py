"""Settles combined into batches: each hold settled once, each caller told its own outcome."""

from __future__ import annotations

import asyncio

import asyncpg

from gateway import admin
from gateway.billing.settling import Settler
from gateway.domain import KeySettings
from gateway.storage import holds
from gateway.storage.holds import Held, Settle
from tests.support import BOX, hold_imagine

PRICE_UNITS = 100_000


async def _holds(pool: asyncpg.Pool, count: int) -> tuple[int, list[Held]]:
    user_id = await admin.create_user(pool, "carol", count * PRICE_UNITS)
    key_id = (await admin.issue_key(pool, user_id, KeySettings(name="k"))).key_id
    held = [await hold_imagine(pool, user_id, key_id, PRICE_UNITS) for _ in range(count)]
    return user_id, held


def _settle(held: Held, channel_id: int) -> Settle:
    return Settle(held.hold_id, "SUBMITTED", channel_id, f"up-{held.task_id}", "ok", {})


async def _channel(pool: asyncpg.Pool) -> int:
    return await admin.add_channel(
        pool, BOX, "sim", "http://127.0.0.1:9", admin.ChannelChanges(secret="secret")
    )


async def test_concurrent_settles_share_one_statement_and_each_is_kept_once(
    db_pool: asyncpg.Pool,
) -> None:
    user_id, held = await _holds(db_pool, 50)
    channel_id = await _channel(db_pool)
    settler = Settler(db_pool)

    outcomes = await asyncio.gather(*(settler.settle(_settle(h, channel_id)) for h in held))

    assert outcomes == [True] * 50
    rows = await db_pool.fetch(
        "SELECT h.status, h.resolved_at, t.status AS task_status, t.upstream_task_id"
        " FROM holds h JOIN tasks t ON t.id = h.task_id WHERE h.user_id = $1",
        user_id,
    )
    assert {(r["status"], r["task_status"]) for r in rows} == {("SETTLED", "SUBMITTED")}
    assert len({r["resolved_at"] for r in rows}) == 1  # one transaction wrote them all
    assert all(r["upstream_task_id"].startswith("up-") for r in rows)
    settles = await db_pool.fetchval(
        "SELECT count(*) FROM ledger WHERE user_id = $1 AND kind = 'SETTLE'", user_id
    )
    assert settles == 50
    assert await db_pool.fetchval("SELECT balance_units FROM users WHERE id = $1", user_id) == 0


async def test_a_hold_named_twice_or_already_released_is_not_settled_again(
    db_pool: asyncpg.Pool,
) -> None:
    user_id, (first, released) = await _holds(db_pool, 2)
    channel_id = await _channel(db_pool)
    assert await holds.release_hold(db_pool, released.hold_id, "REJECTED", "test")
    settler = Settler(db_pool)

    outcomes = await asyncio.gather(
        settler.settle(_settle(first, channel_id)),
        settler.settle(_settle(first, channel_id)),
        settler.settle(_settle(released, channel_id)),
    )

    assert outcomes == [True, False, False]
    statuses = await db_pool.fetch(
        "SELECT id, status FROM holds WHERE user_id = $1 ORDER BY id", user_id
    )
    assert [r["status"] for r in statuses] == ["SETTLED", "RELEASED"]
    kinds = await db_pool.fetch(
        "SELECT kind, count(*) FROM ledger WHERE user_id = $1 GROUP BY kind", user_id
    )
    assert {r["kind"]: r["count"] for r in kinds} == {
        "TOPUP": 1,
        "HOLD": 2,
        "SETTLE": 1,
        "RELEASE": 1,
    }


async def test_a_settle_the_database_refuses_fails_alone(db_pool: asyncpg.Pool) -> None:
    _, held = await _holds(db_pool, 3)
    channel_id = await _channel(db_pool)
    settler = Settler(db_pool)
    no_such_channel = channel_id + 1000

    outcomes = await asyncio.gather(
        settler.settle(_settle(held[0], channel_id)),
        settler.settle(_settle(held[1], no_such_channel)),
        settler.settle(_settle(held[2], channel_id)),
        return_exceptions=True,
    )

    assert outcomes[0] is True
    assert outcomes[2] is True
    assert isinstance(outcomes[1], asyncpg.ForeignKeyViolationError)
    status = await db_pool.fetchval("SELECT status FROM holds WHERE id = $1", held[1].hold_id)
    assert status == "OPEN"


async def test_a_lone_settle_is_written_at_once(db_pool: asyncpg.Pool) -> None:
    _, (held,) = await _holds(db_pool, 1)
    channel_id = await _channel(db_pool)
    settler = Settler(db_pool)

    assert await asyncio.wait_for(settler.settle(_settle(held, channel_id)), timeout=5)
    status = await db_pool.fetchval("SELECT status FROM holds WHERE id = $1", held.hold_id)
    assert status == "SETTLED"


async def test_a_hold_whose_task_ended_meanwhile_is_not_settled_and_its_release_keeps_the_end(
    db_pool: asyncpg.Pool,
) -> None:
    user_id, (held,) = await _holds(db_pool, 1)
    channel_id = await _channel(db_pool)
    await db_pool.execute(  # a cancel or a timeout got there first
        "UPDATE tasks SET status = 'CANCEL' WHERE id = $1", held.task_id
    )

    settled = await Settler(db_pool).settle(_settle(held, channel_id))
    released = await holds.release_hold(db_pool, held.hold_id, "REJECTED", "ended first")

    assert (settled, released) == (False, True)
    assert (
        await db_pool.fetchval("SELECT status FROM tasks WHERE id = $1", held.task_id) == "CANCEL"
    )
    assert await db_pool.fetchval("SELECT balance_units FROM users WHERE id = $1", user_id) == (
        PRICE_UNITS
    )
