"""Per-account limits: core_size running + queue_size waiting, 22 and 23, children's account."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import httpx

from tests.conftest import StartSimulator
from tests.simulator.helpers import (
    QUEUE_FULL,
    act,
    button,
    connect,
    must_fetch,
    submit,
    submit_task,
    wait_for,
)


async def _accounts(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    accounts: list[dict[str, Any]] = (await client.get("/sim/stats")).json()["accounts"]
    return accounts


async def _load(client: httpx.AsyncClient) -> dict[str, tuple[int, int]]:
    return {a["id"]: (a["running"], a["queued"]) for a in await _accounts(client)}


async def test_fourteenth_submit_on_one_account_gets_23(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(accounts=1, speed_factor=10)
    async with connect(sim) as client:
        answers = [
            await submit(client, "/mj/submit/imagine", {"prompt": f"load {i}"}) for i in range(14)
        ]
        codes = [a["code"] for a in answers]
        assert codes == [1] * 3 + [22] * 10 + [23], codes
        refused = answers[13]
        assert refused["description"] == QUEUE_FULL
        assert refused["result"] is None
        listed = (await client.get("/mj/task/list")).json()
        assert {t["id"] for t in listed} == {a["result"] for a in answers[:13]}
        assert await _load(client) == {"sim-account-1": (3, 10)}
        for queued in answers[3:13]:
            task = await must_fetch(client, queued["result"])
            assert task["status"] == "NOT_START"
            assert task["startTime"] is None


async def test_queued_answer_tells_the_position(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(accounts=1, speed_factor=10)
    async with connect(sim) as client:
        answers = [
            await submit(client, "/mj/submit/imagine", {"prompt": f"queue {i}"}) for i in range(13)
        ]
    queued = answers[3:]
    positions = [a["properties"]["numberOfQueues"] for a in queued]
    assert all(isinstance(p, int) for p in positions)
    assert positions[0] in (0, 1), positions
    assert positions == list(range(positions[0], positions[0] + 10))
    for answer, position in zip(queued, positions, strict=True):
        assert answer["code"] == 22
        assert answer["description"] == f"排队中，前面还有{position}个任务"
        assert isinstance(answer["result"], str)


async def test_concurrent_submits_respect_the_limits(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(accounts=1, speed_factor=10)
    async with connect(sim) as client:
        answers = await asyncio.gather(
            *(submit(client, "/mj/submit/imagine", {"prompt": f"rush {i}"}) for i in range(20))
        )
        assert Counter(a["code"] for a in answers) == Counter({1: 3, 22: 10, 23: 7})
        assert len((await client.get("/mj/task/list")).json()) == 13


async def test_limits_are_per_account(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(accounts=3, core_size=2, queue_size=1, speed_factor=10)
    async with connect(sim) as client:
        answers = [
            await submit(client, "/mj/submit/imagine", {"prompt": f"spread {i}"}) for i in range(10)
        ]
        codes = [a["code"] for a in answers]
        assert set(codes[:9]) <= {1, 22}, codes
        assert codes[:3] == [1, 1, 1], codes
        assert codes[9] == 23, codes
        load = await _load(client)
    assert load == {f"sim-account-{i}": (2, 1) for i in (1, 2, 3)}


async def test_queued_tasks_run_in_turn(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(accounts=1, core_size=1, queue_size=2, speed_factor=500)
    async with connect(sim) as client:
        ids = [
            await submit_task(client, "/mj/submit/imagine", {"prompt": f"turn {i}"}, codes=(code,))
            for i, code in enumerate((1, 22, 22))
        ]
        assert (await submit(client, "/mj/submit/imagine", {"prompt": "late"}))["code"] == 23
        done = [await wait_for(client, i, within=10.0) for i in ids]
    for earlier, later in itertools.pairwise(done):
        assert later["startTime"] >= earlier["finishTime"], (earlier, later)


async def test_children_run_on_the_parent_account(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(accounts=2, core_size=1, queue_size=0, speed_factor=100)
    async with connect(sim) as client:
        first_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "a"}, codes=(1,))
        first_load = await _load(client)
        (first_account,) = [k for k, (running, _) in first_load.items() if running == 1]
        second_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "b"}, codes=(1,))
        assert set((await _load(client)).values()) == {(1, 0)}
        first = await wait_for(client, first_id, within=10.0)
        second = await wait_for(client, second_id, within=10.0)
        assert set((await _load(client)).values()) == {(0, 0)}

        child = await act(client, first, button(first, "::variation::1::"))
        assert child["code"] == 1, child
        load = await _load(client)
        assert load[first_account] == (1, 0)
        assert sum(r for r, _ in load.values()) == 1

        blocked = await act(client, first, button(first, "::variation::2::"))
        assert blocked["code"] == 23, blocked

        other = await act(client, second, button(second, "::variation::1::"))
        assert other["code"] == 1, other
        assert set((await _load(client)).values()) == {(1, 0)}
        assert (await submit(client, "/mj/submit/imagine", {"prompt": "c"}))["code"] == 23
        await wait_for(client, child["result"], within=10.0)
        await wait_for(client, other["result"], within=10.0)
