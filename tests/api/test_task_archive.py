"""Old ended tasks move to ``tasks_archive``; the ledger, the usage report and the
reconciliation stay whole, and open tasks stay where they are."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from gateway.billing.reconciliation import reconcile
from gateway.storage.archive import archive_ended_tasks
from tests.conftest import Client, StartGateway, StartSimulator

IMAGINE_UNITS = 100_000


async def test_ended_tasks_move_to_the_archive_and_the_money_still_adds_up(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    simulator = await simulator_factory(task_timeout_s=5000)
    await gateway.add_channel(simulator)
    pool = gateway.services.pool
    user_id = await gateway.create_user("olga", 10 * IMAGINE_UNITS)
    client = Client(
        gateway, user_id, await gateway.issue_key(user_id, quota_units=8 * IMAGINE_UNITS)
    )
    prompts = ["a gull", "a gull [[sim:fail_banned]]", "a gull [[sim:queue_full]]"]
    answers = [await client.post("/mj/submit/imagine", {"prompt": p}) for p in prompts]
    assert [a.json()["code"] for a in answers] == [1, 1, 23]
    done, failed = answers[0].json()["result"], answers[1].json()["result"]
    grid = await client.wait_for(done, {"SUCCESS", "FAILURE"})
    assert grid["status"] == "SUCCESS"
    assert (await client.wait_for(failed, {"SUCCESS", "FAILURE"}))["status"] == "FAILURE"
    u1 = next(b["customId"] for b in grid["buttons"] if b["label"] == "U1")
    upscale = await client.post("/mj/submit/action", {"taskId": done, "customId": u1})
    assert (await client.wait_for(upscale.json()["result"], {"SUCCESS"}))["status"] == "SUCCESS"
    stalled = (await client.post("/mj/submit/imagine", {"prompt": "a gull [[sim:stall]]"})).json()
    since, until = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
    usage = await gateway.services.billing.usage(user_id, None, since, until)
    ledger = await pool.fetchrow("SELECT count(*), sum(amount_units) FROM ledger")
    balance = await client.balance()

    moved = await archive_ended_tasks(pool, int(time.time() * 1000) + 1000, page=2)

    assert moved == 4  # the grid, its upscale, the refunded one and the rejected one
    kept = await pool.fetch("SELECT id, status FROM tasks")
    assert [str(row["id"]) for row in kept] == [stalled["result"]]  # open: it stays
    assert kept[0]["status"] in {"SUBMITTED", "IN_PROGRESS"}
    archived = dict(await pool.fetch("SELECT status, count(*) FROM tasks_archive GROUP BY 1"))
    assert archived == {"SUCCESS": 2, "FAILURE": 1, "REJECTED": 1}
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM holds WHERE task_id <> $1", int(stalled["result"])
        )
        == 0
    )
    assert await pool.fetchrow("SELECT count(*), sum(amount_units) FROM ledger") == ledger
    assert await gateway.services.billing.usage(user_id, None, since, until) == usage
    report = await reconcile(pool, hold_grace_s=0)
    assert report.ok, report.summary()

    # The API no longer has them; a button of an archived task is refused and costs nothing.
    listed = await client.post(
        "/mj/task/list-by-condition", {"ids": [done, failed, stalled["result"]]}
    )
    assert [task["id"] for task in listed.json()] == [stalled["result"]]
    again = await client.post("/mj/submit/action", {"taskId": done, "customId": u1})
    assert again.status_code == 404
    assert await client.balance() == balance

    # The open task ends later, is refunded, and follows them.
    assert (await client.post(f"/mj/task/{stalled['result']}/cancel", {})).json()["code"] == 1
    assert await client.balance() == balance + IMAGINE_UNITS
    assert await archive_ended_tasks(pool, int(time.time() * 1000) + 1000) == 1
    assert await pool.fetchval("SELECT count(*) FROM tasks") == 0
    report = await reconcile(pool, hold_grace_s=0)
    assert report.ok, report.summary()
