"""The control surface: /sim/health, /sim/stats, /sim/faults (GET and PUT at runtime)."""

from __future__ import annotations

import re

import httpx
import pytest
from aiohttp import web

from gateway.config import SimulatorFaults, SimulatorSettings
from gateway.simulator import create_simulator_app, run_simulator, start_simulator
from tests.conftest import StartSimulator
from tests.simulator.helpers import (
    connect,
    http_client,
    imagine,
    submit,
    submit_task,
    wait_for,
)


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/sim/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_stats_count_requests_tasks_and_accounts(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(accounts=3)
    async with connect(sim) as client:
        stats = (await client.get("/sim/stats")).json()
        assert stats["requests"].get("submit/imagine", 0) == 0
        assert sum(stats["tasks"].values()) == 0
        assert [a["id"] for a in stats["accounts"]] == [f"sim-account-{i}" for i in (1, 2, 3)]
        for account in stats["accounts"]:
            assert account == {
                "id": account["id"],
                "running": 0,
                "queued": 0,
                "remix": False,
            }

        await imagine(client, "one")
        await imagine(client, "two")
        await submit(client, "/mj/submit/imagine", {"prompt": ""})
        failed = await submit_task(client, "/mj/submit/imagine", {"prompt": "[[sim:fail_invalid]]"})
        await wait_for(client, failed, statuses=("FAILURE",))
        await submit(client, "/mj/submit/blend", {"base64Array": []})

        stats = (await client.get("/sim/stats")).json()
    assert stats["requests"]["submit/imagine"] == 4
    assert stats["requests"]["submit/blend"] == 1
    assert stats["tasks"].get("SUCCESS") == 2
    assert stats["tasks"].get("FAILURE") == 1
    assert sum(stats["tasks"].values()) == 3
    assert all(a["running"] == 0 and a["queued"] == 0 for a in stats["accounts"])


async def test_faults_default_to_the_settings(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(faults={"stall": 0.25, "slow_answer_s": 1.5})
    async with connect(sim) as client:
        response = await client.get("/sim/faults")
    assert response.status_code == 200
    expected = SimulatorFaults(stall=0.25, slow_answer_s=1.5).model_dump()
    assert response.json() == expected


async def test_put_faults_replaces_given_rates(client: httpx.AsyncClient) -> None:
    assert (await client.get("/sim/faults")).json() == SimulatorFaults().model_dump()
    response = await client.put("/sim/faults", json={"queue_full": 1.0})
    assert response.status_code == 200
    expected = SimulatorFaults(queue_full=1.0).model_dump()
    assert response.json() == expected
    assert (await client.get("/sim/faults")).json() == expected
    answer = await submit(client, "/mj/submit/imagine", {"prompt": "a cat"})
    assert answer["code"] == 23, answer

    response = await client.put("/sim/faults", json={"stall": 0.5})
    expected = SimulatorFaults(queue_full=1.0, stall=0.5).model_dump()
    assert response.json() == expected

    response = await client.put("/sim/faults", json={"queue_full": 0.0, "stall": 0.0})
    assert response.json() == SimulatorFaults().model_dump()
    task = await imagine(client)
    assert task["status"] == "SUCCESS"


async def test_put_lifecycle_fault_at_runtime(client: httpx.AsyncClient) -> None:
    assert (await client.put("/sim/faults", json={"fail_banned": 1.0})).status_code == 200
    task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "a cat"})
    failed = await wait_for(client, task_id, statuses=("FAILURE",))
    assert failed["failReason"].startswith("[Banned prompt detected]")
    assert (await client.put("/sim/faults", json={"fail_banned": 0})).status_code == 200
    assert (await imagine(client))["status"] == "SUCCESS"


async def test_put_transport_fault_at_runtime(client: httpx.AsyncClient) -> None:
    assert (await client.put("/sim/faults", json={"http_500": 1.0})).status_code == 200
    assert (await client.post("/mj/submit/imagine", json={"prompt": "x"})).status_code == 500
    assert (await client.put("/sim/faults", json={"http_500": 0.0})).status_code == 200
    assert (await client.post("/mj/submit/imagine", json={"prompt": "x"})).status_code == 200


@pytest.mark.parametrize(
    "body", [{"http_500": 2.0}, {"stall": -0.1}, {"slow": "often"}, {"slow_answer_s": -1}]
)
async def test_put_invalid_faults_is_refused(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.put("/sim/faults", json=body)
    assert 400 <= response.status_code < 500
    assert (await client.get("/sim/faults")).json() == SimulatorFaults().model_dump()


async def test_entry_points() -> None:
    settings = SimulatorSettings(port=0, speed_factor=1000, seed=3)
    assert isinstance(create_simulator_app(settings), web.Application)
    assert callable(run_simulator)
    sim = await start_simulator(settings)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.base_url), sim.base_url
        assert sim.settings.speed_factor == 1000
        async with connect(sim, secret=None) as client:
            task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "unfinished"})
            assert (await client.get(f"/mj/task/{task_id}/fetch")).json()["id"] == task_id
    finally:
        await sim.stop()
    async with http_client() as client:
        with pytest.raises(httpx.TransportError):
            await client.get(f"{sim.base_url}/sim/health")
