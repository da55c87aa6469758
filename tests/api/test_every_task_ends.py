"""Every task reaches an end: timeouts and forgotten tasks fail, and are refunded once."""

from __future__ import annotations

import asyncpg

from tests.conftest import StartGateway, StartSimulator

IMAGINE_UNITS = 100_000
START_UNITS = 1_000_000


async def _refunds(pool: asyncpg.Pool, task_id: str) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM ledger WHERE task_id = $1 AND kind = 'REFUND'", int(task_id)
    )
    return count


async def test_a_task_the_upstream_forgets_fails_and_is_refunded_once(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"forgotten_after_polls": 3})
    simulator = await simulator_factory(task_timeout_s=5000)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)

    response = await client.post("/mj/submit/imagine", {"prompt": "a moth [[sim:forget]]"})
    assert response.json()["code"] == 1, response.text
    task_id = response.json()["result"]
    assert await client.balance() == START_UNITS - IMAGINE_UNITS

    task = await client.wait_for(task_id, {"FAILURE", "SUCCESS"}, timeout_s=15)
    assert task["status"] == "FAILURE"
    assert task["failReason"] == "the upstream no longer knows this task"
    assert task["finishTime"] is not None
    assert await client.balance() == START_UNITS
    for _ in range(3):
        await gateway.services.poller.run_once()
    assert await client.balance() == START_UNITS
    assert await _refunds(gateway.services.pool, task_id) == 1


async def test_a_task_open_past_the_timeout_fails_and_is_refunded_once(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"task_timeout_s": 1.0})
    simulator = await simulator_factory(task_timeout_s=100_000, speed_factor=1.0)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)

    response = await client.post("/mj/submit/imagine", {"prompt": "a slow snail"})
    task_id = response.json()["result"]
    assert await client.balance() == START_UNITS - IMAGINE_UNITS

    task = await client.wait_for(task_id, {"FAILURE", "SUCCESS"}, timeout_s=15)
    assert task["status"] == "FAILURE"
    assert task["failReason"].startswith("timed out")
    assert await client.balance() == START_UNITS
    assert await _refunds(gateway.services.pool, task_id) == 1


async def test_a_task_the_upstream_keeps_is_never_counted_as_forgotten(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"forgotten_after_polls": 2})
    simulator = await simulator_factory(task_timeout_s=5000, speed_factor=30)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)

    response = await client.post("/mj/submit/imagine", {"prompt": "a heron"})
    task = await client.wait_for(response.json()["result"], {"FAILURE", "SUCCESS"}, timeout_s=20)
    assert task["status"] == "SUCCESS", task["failReason"]
    assert await client.balance() == START_UNITS - IMAGINE_UNITS
