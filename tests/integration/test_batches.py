"""Holds and settles combined into batches: each written once, each caller told its own
outcome, a refusal or a fault confined to its own item."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import asyncpg

from gateway import admin
from gateway.billing import batches
from gateway.domain import KeySettings
from gateway.storage import holds
from gateway.storage.holds import Held, HoldRefusal, NewTask, Settle
from tests.support import BOX, hold_imagine, imagine_task

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
    settler = batches.settles(db_pool)

    outcomes = await asyncio.gather(*(settler.write(_settle(h, channel_id)) for h in held))

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
    settler = batches.settles(db_pool)

    outcomes = await asyncio.gather(
        settler.write(_settle(first, channel_id)),
        settler.write(_settle(first, channel_id)),
        settler.write(_settle(released, channel_id)),
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
    settler = batches.settles(db_pool)
    no_such_channel = channel_id + 1000

    outcomes = await asyncio.gather(
        settler.write(_settle(held[0], channel_id)),
        settler.write(_settle(held[1], no_such_channel)),
        settler.write(_settle(held[2], channel_id)),
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
    settler = batches.settles(db_pool)

    assert await asyncio.wait_for(settler.write(_settle(held, channel_id)), timeout=5)
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

    settled = await batches.settles(db_pool).write(_settle(held, channel_id))
    released = await holds.release_hold(db_pool, held.hold_id, "REJECTED", "ended first")

    assert (settled, released) == (False, True)
    assert (
        await db_pool.fetchval("SELECT status FROM tasks WHERE id = $1", held.task_id) == "CANCEL"
    )
    assert await db_pool.fetchval("SELECT balance_units FROM users WHERE id = $1", user_id) == (
        PRICE_UNITS
    )


async def _balance(pool: asyncpg.Pool, user_id: int) -> int:
    balance: int = await pool.fetchval("SELECT balance_units FROM users WHERE id = $1", user_id)
    return balance


async def _key_left(pool: asyncpg.Pool, key_id: int) -> int | None:
    left: int | None = await pool.fetchval(
        "SELECT quota_remaining_units FROM api_keys WHERE id = $1", key_id
    )
    return left


async def test_concurrent_holds_share_one_statement_and_each_debits_once(
    db_pool: asyncpg.Pool,
) -> None:
    user_id = await admin.create_user(db_pool, "dora", 50 * PRICE_UNITS)
    key_id = (await admin.issue_key(db_pool, user_id, KeySettings(name="k"))).key_id
    held_batches = batches.new_task_holds(db_pool, 600.0)

    outcomes = await asyncio.gather(
        *(held_batches.write(imagine_task(user_id, key_id, PRICE_UNITS)) for _ in range(50))
    )

    assert all(isinstance(held, Held) for held in outcomes)
    assert len({held.task_id for held in outcomes if isinstance(held, Held)}) == 50
    rows = await db_pool.fetch(
        "SELECT t.status, t.created_at, h.status AS hold_status, h.amount_units"
        " FROM tasks t JOIN holds h ON h.task_id = t.id WHERE t.user_id = $1",
        user_id,
    )
    assert len(rows) == 50
    assert {(r["status"], r["hold_status"], r["amount_units"]) for r in rows} == {
        ("SUBMITTING", "OPEN", PRICE_UNITS)
    }
    assert len({r["created_at"] for r in rows}) < 50  # transactions were shared
    assert await _balance(db_pool, user_id) == 0
    ledger = await db_pool.fetchval(
        "SELECT sum(amount_units) FROM ledger WHERE user_id = $1 AND kind = 'HOLD'", user_id
    )
    assert ledger == -50 * PRICE_UNITS


async def test_a_batch_refuses_as_the_same_holds_one_at_a_time_would(
    db_pool: asyncpg.Pool,
) -> None:
    user_id = await admin.create_user(db_pool, "erin", 3 * PRICE_UNITS)
    limited = (
        await admin.issue_key(db_pool, user_id, KeySettings(name="a", quota_units=PRICE_UNITS))
    ).key_id
    unlimited = (await admin.issue_key(db_pool, user_id, KeySettings(name="b"))).key_id
    keys = [limited, limited, unlimited, unlimited, unlimited, limited]

    outcomes = await holds.hold_new_tasks(
        db_pool, [imagine_task(user_id, key, PRICE_UNITS) for key in keys], 600.0
    )

    refusals = [o if isinstance(o, HoldRefusal) else None for o in outcomes]
    assert refusals == [
        None,
        HoldRefusal.KEY_LIMIT,
        None,
        None,
        HoldRefusal.USER_BALANCE,
        HoldRefusal.KEY_LIMIT,
    ]
    assert await _balance(db_pool, user_id) == 0
    assert await _key_left(db_pool, limited) == 0
    assert await _key_left(db_pool, unlimited) is None
    rows = await db_pool.fetch(
        "SELECT h.api_key_id, h.key_limited, l.key_amount_units FROM holds h"
        " JOIN ledger l ON l.source = 'hold:' || h.id AND l.kind = 'HOLD'"
        " WHERE h.user_id = $1 ORDER BY h.id",
        user_id,
    )
    assert [tuple(r) for r in rows] == [
        (limited, True, -PRICE_UNITS),
        (unlimited, False, 0),
        (unlimited, False, 0),
    ]
    tasks = await db_pool.fetchval("SELECT count(*) FROM tasks WHERE user_id = $1", user_id)
    assert tasks == 3


async def test_a_disabled_user_is_refused_even_a_free_task_and_nothing_is_written(
    db_pool: asyncpg.Pool,
) -> None:
    user_id = await admin.create_user(db_pool, "fay", PRICE_UNITS)
    key_id = (await admin.issue_key(db_pool, user_id, KeySettings(name="k"))).key_id
    other_id = await admin.create_user(db_pool, "gus", PRICE_UNITS)
    other_key = (await admin.issue_key(db_pool, other_id, KeySettings(name="k"))).key_id
    await admin.set_user_enabled(db_pool, user_id, False)

    outcomes = await holds.hold_new_tasks(
        db_pool,
        [
            imagine_task(user_id, key_id, 0),
            imagine_task(other_id, other_key, PRICE_UNITS),
            imagine_task(user_id, key_id, PRICE_UNITS),
        ],
        600.0,
    )

    assert outcomes[0] is HoldRefusal.USER_BALANCE
    assert isinstance(outcomes[1], Held)
    assert outcomes[2] is HoldRefusal.USER_BALANCE
    assert await _balance(db_pool, user_id) == PRICE_UNITS
    assert await _balance(db_pool, other_id) == 0
    written = await db_pool.fetchval(
        "SELECT (SELECT count(*) FROM tasks WHERE user_id = $1)"
        " + (SELECT count(*) FROM holds WHERE user_id = $1)"
        " + (SELECT count(*) FROM ledger WHERE user_id = $1 AND kind <> 'TOPUP')",
        user_id,
    )
    assert written == 0


async def test_a_hold_the_database_refuses_fails_alone(db_pool: asyncpg.Pool) -> None:
    user_id = await admin.create_user(db_pool, "hal", 3 * PRICE_UNITS)
    key_id = (await admin.issue_key(db_pool, user_id, KeySettings(name="k"))).key_id
    held_batches = batches.new_task_holds(db_pool, 600.0)
    unknown_mode = dataclasses.replace(imagine_task(user_id, key_id, PRICE_UNITS), mode="SLOW")

    outcomes = await asyncio.gather(
        held_batches.write(imagine_task(user_id, key_id, PRICE_UNITS)),
        held_batches.write(unknown_mode),
        held_batches.write(imagine_task(user_id, key_id, PRICE_UNITS)),
        return_exceptions=True,
    )

    assert isinstance(outcomes[0], Held)
    assert isinstance(outcomes[1], asyncpg.CheckViolationError)
    assert isinstance(outcomes[2], Held)
    assert await _balance(db_pool, user_id) == PRICE_UNITS
    tasks = await db_pool.fetchval("SELECT count(*) FROM tasks WHERE user_id = $1", user_id)
    assert tasks == 2


async def test_batches_of_two_workers_on_one_user_and_its_limited_keys_never_deadlock(
    db_pool: asyncpg.Pool,
) -> None:
    user_id = await admin.create_user(db_pool, "ivy", 60 * PRICE_UNITS)
    keys = [
        (
            await admin.issue_key(
                db_pool, user_id, KeySettings(name=n, quota_units=40 * PRICE_UNITS)
            )
        ).key_id
        for n in ("a", "b")
    ]
    failures: list[Exception] = []

    async def write_many(tasks: Sequence[NewTask]) -> list[Held | HoldRefusal]:
        try:
            return await holds.hold_new_tasks(db_pool, tasks, 600.0)
        except Exception as exc:  # a deadlock: the batch would be retried one by one
            failures.append(exc)
            raise

    workers = [batches.Batches(write_many, max_batch=10, idempotent=False) for _ in range(2)]

    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(  # one worker asks for the keys in the order a, b, a, b..., the other b, a, b...
                workers[n % 2].write(imagine_task(user_id, keys[(n // 2 + n) % 2], PRICE_UNITS))
                for n in range(100)
            )
        ),
        timeout=30,
    )

    assert failures == []
    held = [o for o in outcomes if isinstance(o, Held)]
    assert len(held) == 60
    assert {o for o in outcomes if not isinstance(o, Held)} == {HoldRefusal.USER_BALANCE}
    assert await _balance(db_pool, user_id) == 0
    left = [await _key_left(db_pool, key) for key in keys]
    assert sum(k or 0 for k in left) == 20 * PRICE_UNITS
    assert all(k is not None and 0 <= k <= 40 * PRICE_UNITS for k in left)


async def test_a_batch_whose_outcome_is_unknown_is_written_again_only_if_that_changes_nothing(
    db_pool: asyncpg.Pool,
) -> None:
    user_id = await admin.create_user(db_pool, "jay", 10 * PRICE_UNITS)
    key_id = (await admin.issue_key(db_pool, user_id, KeySettings(name="k"))).key_id

    async def written_then_lost(tasks: Sequence[NewTask]) -> list[Held | HoldRefusal]:
        await holds.hold_new_tasks(db_pool, tasks, 600.0)  # committed...
        raise ConnectionResetError("the answer was lost")  # ...but the caller cannot know

    async def held_count() -> int:
        count: int = await db_pool.fetchval(
            "SELECT count(*) FROM holds WHERE user_id = $1", user_id
        )
        return count

    for idempotent, expected in ((False, 3), (True, 3 + 3)):  # the batch, then each alone
        before = await held_count()
        writer = batches.Batches(written_then_lost, max_batch=10, idempotent=idempotent)
        outcomes = await asyncio.gather(
            *(writer.write(imagine_task(user_id, key_id, PRICE_UNITS)) for _ in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(o, ConnectionResetError) for o in outcomes)
        assert await held_count() - before == expected
