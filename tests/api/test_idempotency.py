"""Idempotency-Key: one charge and one answer per key, whatever the client resends."""

from __future__ import annotations

import asyncio

from gateway.simulator import RunningSimulator
from tests.api.helpers import START_BALANCE, start
from tests.conftest import StartGateway, StartSimulator

IMAGINE_UNITS = 100_000


async def test_a_replay_returns_the_first_answer_and_charges_once(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    _, client = await start(gateway_factory, simulator)
    headers = {"Idempotency-Key": "order-1"}
    first = await client.post("/mj/submit/imagine", {"prompt": "a crane"}, headers=headers)
    again = await client.post("/mj/submit/imagine", {"prompt": "a crane"}, headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await client.balance() == START_BALANCE - IMAGINE_UNITS
    listed = (await client.get("/mj/task/list")).json()
    assert [task["id"] for task in listed] == [first.json()["result"]]


async def test_the_same_key_with_another_body_is_a_conflict(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    _, client = await start(gateway_factory, simulator)
    headers = {"Idempotency-Key": "order-2"}
    await client.post("/mj/submit/imagine", {"prompt": "a crane"}, headers=headers)
    other = await client.post("/mj/submit/imagine", {"prompt": "a swan"}, headers=headers)

    assert other.status_code == 409
    assert other.json() == {
        "code": 21,
        "description": "Idempotency-Key already used with another request",
        "result": None,
    }
    assert await client.balance() == START_BALANCE - IMAGINE_UNITS


async def test_concurrent_duplicates_run_once(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    slow = await simulator_factory(faults={"slow": 1.0, "slow_answer_s": 0.5})
    gateway, client = await start(gateway_factory, slow)
    headers = {"Idempotency-Key": "order-3"}
    responses = await asyncio.gather(
        *(
            client.post("/mj/submit/imagine", {"prompt": "a heron"}, headers=headers)
            for _ in range(8)
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 7
    assert all(r.json()["code"] == 21 for r in responses if r.status_code == 409)
    assert await client.balance() == START_BALANCE - IMAGINE_UNITS
    submits = await gateway.services.pool.fetchval(
        "SELECT count(*) FROM tasks WHERE user_id = $1", client.user_id
    )
    assert submits == 1


async def test_a_key_is_freed_when_nothing_was_charged_for_a_server_side_failure(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    broken = await simulator_factory(faults={"http_500": 1.0})
    _, client = await start(gateway_factory, broken)
    headers = {"Idempotency-Key": "order-4"}
    failed = await client.post("/mj/submit/imagine", {"prompt": "a kite"}, headers=headers)
    assert failed.status_code == 502

    await client.gateway.http.put(
        f"{broken.base_url}/sim/faults",
        json={"http_500": 0.0},
        headers={"mj-api-secret": "sim-test-secret"},
    )
    retried = await client.post("/mj/submit/imagine", {"prompt": "a kite"}, headers=headers)
    assert retried.status_code == 200
    assert retried.json()["code"] == 1
    assert await client.balance() == START_BALANCE - IMAGINE_UNITS
