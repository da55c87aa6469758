"""Restart safety: a gateway killed in the middle of 500 running tasks; the one started in its
place brings every task to an end, each charged or refunded exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx

from gateway import admin
from tests.conftest import SIMULATOR_SECRET, StartSimulator
from tests.processes import StartGatewayProcess, reconcile
from tests.support import BOX

TASKS = 500
IMAGINE_UNITS = 100_000
START_UNITS = 1_000 * IMAGINE_UNITS
OPEN = ["SUBMITTING", "NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS"]
ENV = {"GATEWAY_RELAY__POLL_INTERVAL_S": "0.2", "GATEWAY_RELAY__TASK_TIMEOUT_S": "120"}


async def test_a_restart_in_the_middle_of_500_running_tasks_loses_none(
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
    db_pool: asyncpg.Pool,
    database_url: str,
    tmp_path: Path,
) -> None:
    simulator = await simulator_factory(
        accounts=50, speed_factor=20.0, faults={"fail_invalid": 0.1}, seed=7
    )
    await admin.add_channel(
        db_pool, BOX, "sim", simulator.base_url, admin.ChannelChanges(secret=SIMULATOR_SECRET)
    )
    user_id = await admin.create_user(db_pool, "mona", START_UNITS)
    key = (await admin.issue_key(db_pool, user_id)).key
    headers = {"Authorization": f"Bearer {key}"}
    gateway = await gateway_process_factory(**ENV)

    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as http:
        answers = await asyncio.gather(
            *(
                http.post("/mj/submit/imagine", json={"prompt": f"a pier {n}"}, headers=headers)
                for n in range(TASKS)
            )
        )
    ids = [int(a.json()["result"]) for a in answers if a.json()["code"] == 1]
    assert len(ids) == TASKS
    running = await db_pool.fetchval(
        "SELECT count(*) FROM tasks WHERE status = ANY($1::TEXT[])", OPEN
    )
    assert running > TASKS // 2  # most are still running when the process dies

    await gateway.kill()
    await gateway.start()

    deadline = asyncio.get_running_loop().time() + 90
    while await db_pool.fetchval("SELECT count(*) FROM tasks WHERE status = ANY($1::TEXT[])", OPEN):
        assert asyncio.get_running_loop().time() < deadline, "tasks still open"
        await asyncio.sleep(0.5)
    rows = await db_pool.fetch("SELECT status, count(*) FROM tasks GROUP BY status")
    statuses = {row["status"]: row["count"] for row in rows}
    assert set(statuses) <= {"SUCCESS", "FAILURE"}
    assert statuses.get("FAILURE", 0) > 0
    succeeded = statuses.get("SUCCESS", 0)
    balance = await db_pool.fetchval("SELECT balance_units FROM users WHERE id = $1", user_id)
    assert balance == START_UNITS - succeeded * IMAGINE_UNITS
    refunds = await db_pool.fetchval("SELECT count(*) FROM ledger WHERE kind = 'REFUND'")
    assert refunds == statuses.get("FAILURE", 0)
    code, report = await reconcile(database_url, tmp_path)
    assert code == 0, report
