"""``POST /mj/task/{id}/cancel``: the caller's open task ends CANCEL upstream and here, refunded
once to user and key; ended, unknown and other users' tasks are refused."""

from __future__ import annotations

import asyncio

from gateway.billing.reconciliation import reconcile
from gateway.simulator.protocol import CANCELLED
from gateway.tasks.cancel import CANCEL_REASON
from tests.api.helpers import upstream_id
from tests.conftest import SIMULATOR_SECRET, Client, StartGateway, StartSimulator

IMAGINE_UNITS = 100_000
START_UNITS = 1_000_000


async def test_a_running_task_is_cancelled_upstream_and_refunded_once(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    # Only this test's calls move the task: a poll between the cancel's call upstream and its
    # write would end the task with the upstream's own reason (the next test).
    gateway = await gateway_factory(relay={"poll_interval_s": 3600.0})
    simulator = await simulator_factory(speed_factor=1.0, task_timeout_s=100_000)
    await gateway.add_channel(simulator)
    user_id = await gateway.create_user("kim", START_UNITS)
    client = Client(
        gateway, user_id, await gateway.issue_key(user_id, quota_units=4 * IMAGINE_UNITS)
    )
    task_id = (await client.post("/mj/submit/imagine", {"prompt": "a slow ox"})).json()["result"]
    assert await client.balance() == START_UNITS - IMAGINE_UNITS

    answer = await client.post(f"/mj/task/{task_id}/cancel", {})
    again = await client.post(f"/mj/task/{task_id}/cancel", {})

    assert answer.json() == {"code": 1, "description": "cancelled", "result": task_id}
    assert (again.status_code, again.json()["code"]) == (400, 21)
    task = (await client.get(f"/mj/task/{task_id}/fetch")).json()
    assert task["status"] == "CANCEL"
    assert task["failReason"] == CANCEL_REASON
    pool = gateway.services.pool
    sim_id = await upstream_id(gateway, task_id)
    upstream = await gateway.http.get(
        f"{simulator.base_url}/mj/task/{sim_id}/fetch",
        headers={"mj-api-secret": SIMULATOR_SECRET},
    )
    assert upstream.json()["status"] == "CANCEL"
    await gateway.services.poller.run_once()
    assert await client.balance() == START_UNITS
    key_left = await pool.fetchval(
        "SELECT quota_remaining_units FROM api_keys WHERE user_id = $1", user_id
    )
    assert key_left == 4 * IMAGINE_UNITS
    refunds = await pool.fetchval(
        "SELECT count(*) FROM ledger WHERE task_id = $1 AND kind = 'REFUND'", int(task_id)
    )
    assert refunds == 1
    assert (await reconcile(pool, hold_grace_s=0)).ok


async def test_cancels_raced_by_the_upstreams_own_cancel_each_refund_once(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    """The channel calls back, and the poller asks, while each cancel runs: a task may end with
    the upstream's CANCEL before the cancel's own write. Either way the client's cancel
    succeeds and the task is refunded once."""
    gateway = await gateway_factory(callbacks=True)
    simulator = await simulator_factory(speed_factor=1.0, task_timeout_s=100_000)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)
    prompts = [f"a slow ox {n}" for n in range(6)]
    submits = [await client.post("/mj/submit/imagine", {"prompt": p}) for p in prompts]
    task_ids = [answer.json()["result"] for answer in submits]

    answers = await asyncio.gather(
        *(client.post(f"/mj/task/{task_id}/cancel", {}) for task_id in task_ids)
    )

    assert [answer.json()["code"] for answer in answers] == [1] * len(task_ids)
    for task_id in task_ids:
        task = (await client.get(f"/mj/task/{task_id}/fetch")).json()
        assert task["status"] == "CANCEL"
        assert task["failReason"] in (CANCEL_REASON, CANCELLED)
    pool = gateway.services.pool
    await gateway.services.poller.run_once()
    assert await client.balance() == START_UNITS
    refunds = await pool.fetch(
        "SELECT task_id, count(*) AS n FROM ledger"
        " WHERE kind = 'REFUND' AND task_id = ANY($1::BIGINT[]) GROUP BY task_id",
        [int(task_id) for task_id in task_ids],
    )
    assert sorted((row["task_id"], row["n"]) for row in refunds) == sorted(
        (int(task_id), 1) for task_id in task_ids
    )
    assert (await reconcile(pool, hold_grace_s=0)).ok


async def test_ended_unknown_and_foreign_tasks_cannot_be_cancelled(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    simulator = await simulator_factory()
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)
    stranger = await gateway.client_with_key(balance_units=START_UNITS, name="eve")
    task_id = (await client.post("/mj/submit/imagine", {"prompt": "a fast ox"})).json()["result"]
    await client.wait_for(task_id, {"SUCCESS"})

    ended = await client.post(f"/mj/task/{task_id}/cancel", {})
    foreign = await stranger.post(f"/mj/task/{task_id}/cancel", {})
    unknown = await client.post("/mj/task/1234567890123456/cancel", {})
    garbage = await client.post("/mj/task/abc/cancel", {})

    assert (ended.status_code, ended.json()["code"]) == (400, 21)
    assert "SUCCESS" in ended.json()["description"]
    for answer in (foreign, unknown, garbage):
        assert (answer.status_code, answer.json()["code"]) == (404, 21)
    assert await client.balance() == START_UNITS - IMAGINE_UNITS


async def test_a_task_that_already_ended_upstream_is_not_cancelled_but_brought_up_to_date(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"poll_interval_s": 3600.0})  # only the cancel looks
    simulator = await simulator_factory(speed_factor=300.0)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)
    task_id = (await client.post("/mj/submit/imagine", {"prompt": "a fast ox"})).json()["result"]
    sim_id = await upstream_id(gateway, task_id)
    for _ in range(200):
        upstream = await gateway.http.get(
            f"{simulator.base_url}/mj/task/{sim_id}/fetch",
            headers={"mj-api-secret": SIMULATOR_SECRET},
        )
        if upstream.json()["status"] == "SUCCESS":
            break
        await asyncio.sleep(0.05)
    assert upstream.json()["status"] == "SUCCESS"
    assert (await client.get(f"/mj/task/{task_id}/fetch")).json()["status"] != "SUCCESS"

    answer = await client.post(f"/mj/task/{task_id}/cancel", {})

    assert (answer.status_code, answer.json()["code"]) == (400, 21)
    assert (await client.get(f"/mj/task/{task_id}/fetch")).json()["status"] == "SUCCESS"
    assert await client.balance() == START_UNITS - IMAGINE_UNITS
