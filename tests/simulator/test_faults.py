"""Fault injection, forced by a prompt marker or drawn at a configured rate."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from gateway.simulator import RunningSimulator
from tests.conftest import StartSimulator
from tests.simulator.helpers import (
    GRID_PROGRESS,
    NO_ACCOUNT,
    QUEUE_FULL,
    TIMEOUT_REASON,
    Task,
    act,
    button,
    connect,
    imagine,
    modal,
    must_fetch,
    not_json,
    observe,
    submit,
    submit_task,
    upscale,
    wait_for,
    wait_until_gone,
)

Outcome = httpx.Response | httpx.TransportError


def _answer(outcome: Outcome) -> dict[str, object]:
    assert isinstance(outcome, httpx.Response), outcome
    assert outcome.status_code == 200, outcome
    body: dict[str, object] = outcome.json()
    return body


def _http_401(outcome: Outcome) -> None:
    assert isinstance(outcome, httpx.Response), outcome
    assert outcome.status_code == 401
    assert outcome.content == b""


def _http_500(outcome: Outcome) -> None:
    assert isinstance(outcome, httpx.Response), outcome
    assert outcome.status_code == 500
    assert outcome.content
    assert not_json(outcome.content)


def _not_json(outcome: Outcome) -> None:
    assert isinstance(outcome, httpx.Response), outcome
    assert outcome.status_code == 200
    assert outcome.content
    assert not_json(outcome.content)


def _dropped(outcome: Outcome) -> None:
    assert isinstance(outcome, httpx.TransportError), outcome


def _banned(outcome: Outcome) -> None:
    answer = _answer(outcome)
    assert answer["code"] == 24, answer
    assert answer["description"] == "可能包含敏感词"
    properties = answer["properties"]
    assert isinstance(properties, dict)
    assert isinstance(properties["bannedWord"], str)
    assert properties["bannedWord"]
    assert isinstance(properties["promptEn"], str)
    assert "[[sim:" not in properties["promptEn"]


def _no_account(outcome: Outcome) -> None:
    answer = _answer(outcome)
    assert answer["code"] == 3, answer
    assert answer["description"] == NO_ACCOUNT


def _queue_full(outcome: Outcome) -> None:
    answer = _answer(outcome)
    assert answer["code"] == 23, answer
    assert answer["description"] == QUEUE_FULL


def _system_error(outcome: Outcome) -> None:
    answer = _answer(outcome)
    assert answer["code"] == 9, answer
    assert answer["result"] is None


SUBMIT_FAULTS: dict[str, Callable[[Outcome], None]] = {
    "http_401": _http_401,
    "http_500": _http_500,
    "not_json": _not_json,
    "drop_connection": _dropped,
    "banned": _banned,
    "no_account": _no_account,
    "queue_full": _queue_full,
    "system_error": _system_error,
}


async def _raw(client: httpx.AsyncClient, path: str, prompt: str) -> Outcome:
    try:
        return await client.post(path, json={"prompt": prompt})
    except httpx.TransportError as exc:
        return exc


async def _task_count(sim: RunningSimulator) -> int:
    async with connect(sim) as client:
        return len((await client.get("/mj/task/list")).json())


@pytest.mark.parametrize("name", SUBMIT_FAULTS)
async def test_submit_fault_by_marker(simulator: RunningSimulator, name: str) -> None:
    async with connect(simulator) as client:
        outcome = await _raw(client, "/mj/submit/imagine", f"a cat [[sim:{name}]] on a mat")
    SUBMIT_FAULTS[name](outcome)
    assert await _task_count(simulator) == 0
    async with connect(simulator) as client:
        assert (await submit(client, "/mj/submit/imagine", {"prompt": "a cat"}))["code"] == 1


@pytest.mark.parametrize("name", SUBMIT_FAULTS)
async def test_submit_fault_by_rate(simulator_factory: StartSimulator, name: str) -> None:
    sim = await simulator_factory(faults={name: 1.0})
    for i in range(2):
        async with connect(sim) as client:
            outcome = await _raw(client, "/mj/submit/imagine", f"a cat number {i}")
        SUBMIT_FAULTS[name](outcome)
    assert await _task_count(sim) == 0


async def test_submit_fault_marker_in_shorten(client: httpx.AsyncClient) -> None:
    _queue_full(await _raw(client, "/mj/submit/shorten", "a long prompt [[sim:queue_full]]"))
    _system_error(await _raw(client, "/mj/submit/shorten", "[[sim:system_error]] a long prompt"))


async def test_submit_faults_at_half_rate_mix(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(accounts=4, faults={"http_500": 0.5})
    statuses = []
    async with connect(sim) as client:
        for i in range(40):
            outcome = await _raw(client, "/mj/submit/imagine", f"coin {i}")
            assert isinstance(outcome, httpx.Response), outcome
            statuses.append(outcome.status_code)
    assert set(statuses) == {200, 500}
    assert 5 <= statuses.count(500) <= 35


async def test_slow_marker_value_is_seconds_not_scaled(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    answer = await submit(client, "/mj/submit/imagine", {"prompt": "a snail [[sim:slow=0.3]]"})
    elapsed = time.monotonic() - started
    assert answer["code"] == 1, answer
    assert 0.3 <= elapsed < 2.0
    started = time.monotonic()
    await submit(client, "/mj/submit/imagine", {"prompt": "a hare"})
    assert time.monotonic() - started < 0.2


async def test_slow_marker_without_value_uses_the_setting(
    simulator_factory: StartSimulator,
) -> None:
    sim = await simulator_factory(faults={"slow_answer_s": 0.25})
    async with connect(sim) as client:
        started = time.monotonic()
        answer = await submit(client, "/mj/submit/imagine", {"prompt": "a snail [[sim:slow]]"})
    assert answer["code"] == 1, answer
    assert 0.25 <= time.monotonic() - started < 2.0


async def test_slow_by_rate(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(faults={"slow": 1.0, "slow_answer_s": 0.2})
    async with connect(sim) as client:
        started = time.monotonic()
        answer = await submit(client, "/mj/submit/imagine", {"prompt": "a snail"})
    assert answer["code"] == 1, answer
    assert 0.2 <= time.monotonic() - started < 2.0


def _failed_with(prefix: str) -> Callable[[Task], None]:
    def check(task: Task) -> None:
        assert task["status"] == "FAILURE", task
        assert task["failReason"].startswith(prefix), task
        assert task["progress"] == ""
        assert task["startTime"] is not None, "must fail after starting"
        assert "[[sim:" not in (task["promptEn"] or "")
        assert "[[sim:" not in (task["properties"].get("finalPrompt") or "")

    return check


FAILURES = {
    "fail_banned": _failed_with("[Banned prompt detected]"),
    "fail_invalid": _failed_with("[Invalid parameter]"),
}


async def _run_failure(sim: RunningSimulator, prompt: str, name: str) -> None:
    async with connect(sim) as client:
        task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": prompt}, codes=(1,))
        FAILURES[name](await wait_for(client, task_id, statuses=("FAILURE",)))


@pytest.mark.parametrize("name", FAILURES)
async def test_lifecycle_failure_by_marker(simulator: RunningSimulator, name: str) -> None:
    await _run_failure(simulator, f"a bird [[sim:{name}]]", name)


@pytest.mark.parametrize("name", FAILURES)
async def test_lifecycle_failure_by_rate(simulator_factory: StartSimulator, name: str) -> None:
    await _run_failure(await simulator_factory(faults={name: 1.0}), "a bird", name)


# 1.5 s at the tests' speed factor of 1000. The task reaches its stall within 60 ms, so the stall
# shows for over a second: longer than any pause of a busy machine between two fetches.
STALL_TIMEOUT_S = 1500.0


async def _run_stall(sim: RunningSimulator, prompt: str) -> None:
    async with connect(sim) as client:
        started = time.monotonic()
        task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": prompt}, codes=(1,))
        seen = await observe(client, task_id, within=5.0)
    elapsed = time.monotonic() - started
    final = seen[-1]
    assert final["status"] == "FAILURE", seen
    assert final["failReason"] == TIMEOUT_REASON
    running = [t for t in seen if t["status"] == "IN_PROGRESS"]
    assert running, seen
    last = int(running[-1]["progress"].rstrip("%"))
    assert 85 <= last <= 93, running[-1]
    assert all(
        t["progress"] in GRID_PROGRESS or 85 <= int(t["progress"][:-1]) <= 93 for t in running
    )
    assert elapsed >= 1.0


async def test_stall_by_marker(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(task_timeout_s=STALL_TIMEOUT_S)
    await _run_stall(sim, "a clock [[sim:stall]]")


async def test_stall_by_rate(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(faults={"stall": 1.0}, task_timeout_s=STALL_TIMEOUT_S)
    await _run_stall(sim, "a clock")


async def _run_forget(sim: RunningSimulator, prompt: str) -> None:
    async with connect(sim) as client:
        kept = await submit_task(client, "/mj/submit/imagine", {"prompt": "kept"}, codes=(1,))
        task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": prompt}, codes=(1,))
        await wait_until_gone(client, task_id)
        listed = await client.post("/mj/task/list-by-condition", json={"ids": [task_id, kept]})
        assert [t["id"] for t in listed.json()] == [kept]


async def test_forget_by_marker(simulator: RunningSimulator) -> None:
    await _run_forget(simulator, "a ghost [[sim:forget]]")


async def test_forget_by_rate(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(faults={"forget": 1.0})
    async with connect(sim) as client:
        task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "a ghost"}, codes=(1,))
        await wait_until_gone(client, task_id)
        listed = await client.post("/mj/task/list-by-condition", json={"ids": [task_id]})
        assert listed.json() == []


async def test_markers_are_removed_from_prompt_en(client: httpx.AsyncClient) -> None:
    prompt = "a fox [[sim:slow=0.01]] in the snow"
    task = await imagine(client, prompt)
    assert "[[sim:" not in task["promptEn"]
    assert "[[sim:" not in task["properties"]["finalPrompt"]
    assert "a fox" in task["promptEn"]
    assert "in the snow" in task["promptEn"]


async def test_lifecycle_marker_in_a_modal_prompt(client: httpx.AsyncClient) -> None:
    parent = await upscale(client, await imagine(client))
    opened = await act(client, parent, button(parent, "MJ::CustomZoom::"))
    assert opened["code"] == 21, opened
    answer = await modal(client, opened["result"], prompt="wide [[sim:fail_invalid]] --zoom 1.5")
    assert answer["code"] == 1, answer
    failed = await wait_for(client, opened["result"], statuses=("FAILURE",))
    FAILURES["fail_invalid"](failed)


async def test_fault_marker_does_not_leak_into_other_tasks(client: httpx.AsyncClient) -> None:
    faulty = await submit_task(client, "/mj/submit/imagine", {"prompt": "x [[sim:fail_banned]]"})
    clean = await imagine(client, "a clean prompt")
    assert clean["status"] == "SUCCESS"
    assert (await wait_for(client, faulty, statuses=("FAILURE",)))["status"] == "FAILURE"
    assert (await must_fetch(client, clean["id"]))["status"] == "SUCCESS"


async def _draws(sim: RunningSimulator) -> list[int]:
    statuses = []
    async with connect(sim) as client:
        for i in range(20):
            outcome = await _raw(client, "/mj/submit/imagine", f"draw {i}")
            assert isinstance(outcome, httpx.Response), outcome
            statuses.append(outcome.status_code)
    return statuses


async def test_same_seed_draws_the_same_faults(simulator_factory: StartSimulator) -> None:
    faults = {"http_500": 0.5}
    first = await _draws(await simulator_factory(seed=7, speed_factor=1, faults=faults))
    again = await _draws(await simulator_factory(seed=7, speed_factor=1, faults=faults))
    other = await _draws(await simulator_factory(seed=8, speed_factor=1, faults=faults))
    assert first == again
    assert set(first) == {200, 500}
    assert other != first
