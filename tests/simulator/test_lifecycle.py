"""The lifecycle of a task: statuses and progress in order, fields on SUCCESS, modes, timeout."""

from __future__ import annotations

import asyncio
import statistics
import uuid

import httpx
import pytest

from tests.conftest import StartSimulator
from tests.simulator.helpers import (
    GRID_PROGRESS,
    TIMEOUT_REASON,
    CallbackReceiver,
    Task,
    act,
    button,
    connect,
    imagine,
    observe,
    submit,
    submit_task,
    wait_for,
)


def _rank(task: Task) -> int:
    status, progress = task["status"], task["progress"]
    if status == "NOT_START":
        return 0
    if status == "SUBMITTED":
        assert progress == "0%", task
        return 1
    if status == "IN_PROGRESS":
        assert progress in GRID_PROGRESS, task
        return 2 + GRID_PROGRESS.index(progress)
    assert status == "SUCCESS", task
    assert progress == "100%", task
    return 100


async def test_polling_sees_the_steps_in_order(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(speed_factor=200)
    async with connect(sim) as client:
        task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "a red kite"})
        seen = await observe(client, task_id, within=10.0)
    ranks = [_rank(t) for t in seen]
    assert ranks == sorted(set(ranks)), [(t["status"], t["progress"]) for t in seen]
    assert seen[-1]["status"] == "SUCCESS"
    steps = [t for t in seen if t["status"] == "IN_PROGRESS"]
    assert len(steps) >= 5, [(t["status"], t["progress"]) for t in seen]
    for task in seen:
        if task["status"] == "NOT_START":
            assert task["startTime"] is None
        else:
            assert isinstance(task["startTime"], int)
        if task["status"] != "SUCCESS":
            assert task["finishTime"] is None
            assert task["buttons"] in ([], None)
    previews = [t["imageUrl"] for t in steps if t["progress"] != "0%"]
    assert previews
    assert all(previews)
    assert seen[-1]["imageUrl"] not in previews


async def test_success_carries_the_final_fields(client: httpx.AsyncClient) -> None:
    prompt = "a lighthouse on a cliff --ar 1:1"
    answer = await submit(client, "/mj/submit/imagine", {"prompt": prompt, "state": "st"})
    task = await wait_for(client, answer["result"])
    assert task["action"] == "IMAGINE"
    assert task["status"] == "SUCCESS"
    assert task["progress"] == "100%"
    assert task["failReason"] is None
    assert task["prompt"] == prompt
    assert task["promptEn"] == prompt
    assert task["state"] == "st"
    assert task["submitTime"] <= task["startTime"] <= task["finishTime"]
    assert task["imageUrl"].startswith("http")
    assert task["buttons"]
    uuid.UUID(task["properties"]["messageHash"])
    assert "a lighthouse on a cliff" in task["properties"]["finalPrompt"]


@pytest.mark.parametrize(
    "state",
    ['{"order": 17, "user": "ü"}', "  spaces kept  ", "line\nbreak\ttab 🔄", ""],
)
async def test_state_is_returned_byte_for_byte(client: httpx.AsyncClient, state: str) -> None:
    task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "x", "state": state})
    done = await wait_for(client, task_id)
    assert done["state"] == state


async def test_state_defaults_to_null(client: httpx.AsyncClient) -> None:
    task = await imagine(client)
    assert task["state"] is None


async def test_task_running_past_the_timeout_fails(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(task_timeout_s=5)
    async with connect(sim) as client:
        task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "too slow"})
        task = await wait_for(client, task_id, statuses=("FAILURE",))
    assert task["failReason"] == TIMEOUT_REASON
    assert task["progress"] == ""
    assert task["startTime"] is not None


async def test_timeout_is_not_hit_by_normal_tasks(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(task_timeout_s=1000)
    async with connect(sim) as client:
        task = await imagine(client)
    assert task["status"] == "SUCCESS"
    assert task["failReason"] is None


async def test_upscale_has_no_progress_steps(
    client: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    grid = await imagine(client)
    answer = await act(
        client, grid, button(grid, "::upsample::2::"), notifyHook=receiver.url("upscale")
    )
    assert answer["code"] == 1, answer
    done = await wait_for(client, answer["result"])
    assert done["action"] == "UPSCALE"
    bodies = await receiver.wait_terminal("upscale")
    assert [b["status"] for b in bodies].count("SUCCESS") == 1
    assert {b["progress"] for b in bodies} <= {"0%", "100%", None}


@pytest.mark.parametrize("mode", ["FAST", "TURBO", "RELAX"])
async def test_every_mode_runs_to_success(client: httpx.AsyncClient, mode: str) -> None:
    body = {"prompt": f"a {mode.lower()} cat", "accountFilter": {"modes": [mode]}}
    task_id = await submit_task(client, "/mj/submit/imagine", body)
    done = await wait_for(client, task_id, within=8.0)
    assert done["status"] == "SUCCESS"


async def test_turbo_is_faster_than_fast(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(speed_factor=200)
    async with connect(sim) as client:
        ids: dict[str, list[str]] = {"FAST": [], "TURBO": []}
        for mode, bucket in ids.items():
            for i in range(3):
                body = {"prompt": f"{mode} {i}", "accountFilter": {"modes": [mode]}}
                bucket.append(await submit_task(client, "/mj/submit/imagine", body, codes=(1,)))
        done = {
            mode: await asyncio.gather(*(wait_for(client, i, within=10.0) for i in bucket))
            for mode, bucket in ids.items()
        }
    took = {
        mode: statistics.mean(t["finishTime"] - t["submitTime"] for t in tasks)
        for mode, tasks in done.items()
    }
    assert took["TURBO"] < took["FAST"] / 1.5, took


async def test_relax_waits_longer_than_fast(client: httpx.AsyncClient) -> None:
    ids: dict[str, list[str]] = {"FAST": [], "RELAX": []}
    for mode, bucket in ids.items():
        for i in range(3):
            body = {"prompt": f"{mode} {i}", "accountFilter": {"modes": [mode]}}
            bucket.append(await submit_task(client, "/mj/submit/imagine", body, codes=(1,)))
    took = {}
    for mode, bucket in ids.items():
        tasks = await asyncio.gather(*(wait_for(client, i, within=5.0) for i in bucket))
        took[mode] = statistics.mean(t["finishTime"] - t["submitTime"] for t in tasks)
    assert took["RELAX"] > took["FAST"] + 50, took
