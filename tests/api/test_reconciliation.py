"""Money the operator can audit: top-ups, adjustments and key limits in the ledger, and a
reconciliation that passes after real traffic and names every gap planted afterwards."""

from __future__ import annotations

import asyncio

import pytest

from gateway import admin
from gateway.billing.reconciliation import reconcile
from gateway.errors import BadRequest, Conflict
from tests.conftest import Client, StartGateway, StartSimulator

IMAGINE_UNITS = 100_000


async def test_reconciliation_passes_after_traffic_and_names_planted_gaps(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    simulator = await simulator_factory(task_timeout_s=5000)
    await gateway.add_channel(simulator)
    pool = gateway.services.pool
    user_id = await gateway.create_user("erin", 10 * IMAGINE_UNITS)
    key = await gateway.issue_key(user_id, quota_units=6 * IMAGINE_UNITS)
    client = Client(gateway, user_id, key)

    prompts = ["a heron", "a heron [[sim:fail_banned]]", "a heron [[sim:queue_full]]"]
    answers = [await client.post("/mj/submit/imagine", {"prompt": p}) for p in prompts]
    assert [a.json()["code"] for a in answers] == [1, 1, 23]
    done = await client.wait_for(answers[0].json()["result"], {"SUCCESS", "FAILURE"})
    failed = await client.wait_for(answers[1].json()["result"], {"SUCCESS", "FAILURE"})
    assert (done["status"], failed["status"]) == ("SUCCESS", "FAILURE")
    await admin.credit(pool, user_id, 5 * IMAGINE_UNITS, kind="TOPUP", reason="paid")
    await admin.credit(pool, user_id, -IMAGINE_UNITS, kind="ADJUST", reason="goodwill undone")
    await admin.set_key_limit(pool, await client.key_id(), 3 * IMAGINE_UNITS, "raised")

    report = await reconcile(pool, hold_grace_s=0)
    assert report.ok, report.summary()
    assert await client.balance() == (10 - 1 + 5 - 1) * IMAGINE_UNITS  # one charge kept
    ledger_key = await pool.fetchval(
        "SELECT sum(key_amount_units) FROM ledger WHERE api_key_id = $1", await client.key_id()
    )
    assert ledger_key == 3 * IMAGINE_UNITS

    failed_id = int(failed["id"])
    await pool.execute("UPDATE users SET balance_units = balance_units + 1 WHERE id = $1", user_id)
    await pool.execute(
        "INSERT INTO ledger"
        " (user_id, api_key_id, task_id, kind, amount_units, key_amount_units, source)"
        " VALUES ($1, $2, $3, 'REFUND', $4, $4, 'task:again')",
        user_id,
        await client.key_id(),
        failed_id,
        IMAGINE_UNITS,
    )
    await pool.execute(
        "INSERT INTO holds (task_id, user_id, api_key_id, amount_units, key_limited, deadline)"
        " VALUES ($1, $2, $3, 1, FALSE, now() - interval '1 hour')",
        int(done["id"]),
        user_id,
        await client.key_id(),
    )

    report = await reconcile(pool, hold_grace_s=60)
    assert not report.ok
    counts = report.summary()["gaps"]
    assert counts["user_balances"] == 1  # +1 by hand, and the planted refund
    assert counts["key_limits"] == 1  # the planted refund's key amount
    assert counts["holds_past_deadline"] == 1
    assert [row["task_id"] for row in report.gaps["task_money"]] == [failed_id]  # refunded twice
    planted = report.gaps["holds_in_ledger"]  # a hold the ledger never saw
    assert [(row["task_id"], row["ledger_holds"]) for row in planted] == [(int(done["id"]), 0)]


async def test_holds_of_ended_tasks_are_forgotten_and_the_ledger_still_proves_the_money(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"finished_holds_keep_days": 7})
    simulator = await simulator_factory(task_timeout_s=5000)
    await gateway.add_channel(simulator)
    pool = gateway.services.pool
    billing = gateway.services.billing
    user_id = await gateway.create_user("ines", 10 * IMAGINE_UNITS)
    client = Client(
        gateway, user_id, await gateway.issue_key(user_id, quota_units=9 * IMAGINE_UNITS)
    )
    prompts = ["a kite", "a kite [[sim:fail_banned]]", "a kite [[sim:queue_full]]"]
    answers = [await client.post("/mj/submit/imagine", {"prompt": p}) for p in prompts]
    assert [a.json()["code"] for a in answers] == [1, 1, 23]
    done, failed = (answers[0].json()["result"], answers[1].json()["result"])
    assert (await client.wait_for(done, {"SUCCESS", "FAILURE"}))["status"] == "SUCCESS"
    assert (await client.wait_for(failed, {"SUCCESS", "FAILURE"}))["status"] == "FAILURE"
    stalled = (await client.post("/mj/submit/imagine", {"prompt": "a kite [[sim:stall]]"})).json()
    holds_before = await pool.fetchval("SELECT count(*) FROM holds")
    assert holds_before == 4

    assert await billing.forget_finished_holds() == 0  # resolved moments ago: all kept
    await pool.execute("UPDATE holds SET resolved_at = now() - interval '8 days'")
    assert await billing.forget_finished_holds() == 3  # the kept, refunded and rejected ones
    assert await billing.forget_finished_holds() == 0
    kept = await pool.fetch("SELECT task_id, status FROM holds")
    assert [(row["task_id"], row["status"]) for row in kept] == [
        (int(stalled["result"]), "SETTLED")  # its task is open: a refund may yet need it
    ]
    assert (await reconcile(pool, hold_grace_s=0)).ok
    assert await client.balance() == 8 * IMAGINE_UNITS  # two charges kept, one refunded

    cancelled = await client.post(f"/mj/task/{stalled['result']}/cancel", {})
    assert cancelled.json()["code"] == 1
    assert await client.balance() == 9 * IMAGINE_UNITS  # refunded from the hold kept
    assert await billing.forget_finished_holds() == 1
    assert await pool.fetchval("SELECT count(*) FROM holds") == 0
    report = await reconcile(pool, hold_grace_s=0)
    assert report.ok, report.summary()

    # With no hold left, a second charge of a task and a charge refunded twice are still found.
    key_id = await client.key_id()
    await pool.execute(
        "INSERT INTO ledger (user_id, api_key_id, task_id, kind, amount_units, source) VALUES"
        " ($1, $2, $3, 'HOLD', -5, 'hold:planted'), ($1, $2, $3, 'SETTLE', 0, 'hold:planted'),"
        " ($1, $2, $4, 'REFUND', 7, 'task:again')",
        user_id,
        key_id,
        int(done),
        int(failed),
    )
    await pool.execute("UPDATE users SET balance_units = balance_units + 2 WHERE id = $1", user_id)
    report = await reconcile(pool, hold_grace_s=0)
    assert report.summary()["gaps"]["user_balances"] == 0
    money = {row["task_id"]: row for row in report.gaps["task_money"]}
    assert set(money) == {int(done), int(failed)}
    assert money[int(done)]["charges"] == 2
    assert money[int(failed)]["refunds"] == 2


async def test_a_reference_moves_money_once_even_when_sent_at_once(
    gateway_factory: StartGateway,
) -> None:
    gateway = await gateway_factory()
    pool = gateway.services.pool
    user_id = await gateway.create_user("frank", 0)

    credits = await asyncio.gather(
        *(
            admin.credit(pool, user_id, 700, kind="TOPUP", reason="invoice", reference="inv-42")
            for _ in range(10)
        )
    )

    assert sorted(c.applied for c in credits) == [False] * 9 + [True]
    with pytest.raises(Conflict, match="inv-42"):
        await admin.credit(pool, user_id, 701, kind="TOPUP", reason="invoice", reference="inv-42")
    assert await gateway.balance(user_id) == 700
    rows = await pool.fetchval(
        "SELECT count(*) FROM ledger WHERE source = 'topup:inv-42' AND kind = 'TOPUP'"
    )
    assert rows == 1
    assert (await reconcile(pool, hold_grace_s=0)).ok


async def test_an_adjustment_never_takes_a_balance_below_zero(
    gateway_factory: StartGateway,
) -> None:
    gateway = await gateway_factory()
    pool = gateway.services.pool
    user_id = await gateway.create_user("grace", 300)

    with pytest.raises(BadRequest, match="cannot go below zero"):
        await admin.credit(pool, user_id, -301, kind="ADJUST", reason="too much")
    with pytest.raises(BadRequest, match="must be positive"):
        await admin.credit(pool, user_id, -5, kind="TOPUP", reason="wrong sign")
    with pytest.raises(BadRequest, match="reason"):
        await admin.credit(pool, user_id, 5, kind="TOPUP", reason=" ")
    done = await admin.credit(pool, user_id, -300, kind="ADJUST", reason="closed")

    assert (done.applied, done.balance_units) == (True, 0)
    assert await gateway.balance(user_id) == 0
    reasons = await pool.fetch(
        "SELECT kind, amount_units, reason FROM ledger WHERE user_id = $1 ORDER BY id", user_id
    )
    assert [tuple(r) for r in reasons] == [
        ("TOPUP", 300, "opening balance"),
        ("ADJUST", -300, "closed"),
    ]
