"""Callbacks to notifyHook: the full task JSON on every change, in order, once, never blocking.

Each POST is fire-and-forget, so arrival order is only meaningful when changes are well apart:
the ordering test runs at a lower speed factor, the others compare the changes as a multiset.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter

import httpx

from tests.conftest import StartSimulator
from tests.simulator.helpers import (
    GRID_CALLBACKS,
    CallbackReceiver,
    Task,
    act,
    button,
    connect,
    imagine,
    must_fetch,
    pairs,
    submit_task,
    wait_for,
)
from tests.support import TASK_KEYS

SETTLE_S = 0.05


def _without_not_start(bodies: list[Task]) -> list[Task]:
    """The changes after creation: an initial NOT_START callback is allowed, at most once."""
    assert [b["status"] for b in bodies].count("NOT_START") <= 1
    return [b for b in bodies if b["status"] != "NOT_START"]


def _each_once(bodies: list[Task]) -> Counter[tuple[str, str]]:
    return Counter(pairs(_without_not_start(bodies)))


async def _settled(receiver: CallbackReceiver, name: str) -> list[Task]:
    await receiver.wait_terminal(name)
    await asyncio.sleep(SETTLE_S)
    return list(receiver.bodies[name])


async def test_every_change_is_posted_in_order_once(
    simulator_factory: StartSimulator, receiver: CallbackReceiver
) -> None:
    sim = await simulator_factory(speed_factor=200)
    body = {"prompt": "a paper boat", "notifyHook": receiver.url("grid"), "state": "cb"}
    async with connect(sim) as client:
        task_id = await submit_task(client, "/mj/submit/imagine", body)
        done = await wait_for(client, task_id, within=10.0)
    bodies = _without_not_start(await _settled(receiver, "grid"))
    assert pairs(bodies) == list(GRID_CALLBACKS)
    for posted in bodies:
        assert set(posted) >= TASK_KEYS
        assert posted["id"] == task_id
        assert posted["state"] == "cb"
        assert posted["action"] == "IMAGINE"
    assert all(
        b["imageUrl"] for b in bodies if b["status"] == "IN_PROGRESS" and b["progress"] != "0%"
    )
    last = bodies[-1]
    for key in ("status", "progress", "imageUrl", "buttons", "finishTime", "startTime"):
        assert last[key] == done[key], key
    assert last["properties"]["messageHash"] == done["properties"]["messageHash"]


async def test_failure_is_posted(client: httpx.AsyncClient, receiver: CallbackReceiver) -> None:
    body = {"prompt": "a cat [[sim:fail_invalid]]", "notifyHook": receiver.url("fail")}
    task_id = await submit_task(client, "/mj/submit/imagine", body)
    await wait_for(client, task_id, statuses=("FAILURE",))
    bodies = await _settled(receiver, "fail")
    failures = [b for b in bodies if b["status"] == "FAILURE"]
    assert len(failures) == 1
    assert failures[0]["failReason"].startswith("[Invalid parameter]")
    assert failures[0]["progress"] == ""
    assert len(pairs(bodies)) == len(set(pairs(bodies)))


async def test_a_child_posts_to_its_own_hook(
    client: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    parent_id = await submit_task(
        client, "/mj/submit/imagine", {"prompt": "parent", "notifyHook": receiver.url("parent")}
    )
    parent = await wait_for(client, parent_id)
    parent_bodies = await _settled(receiver, "parent")
    answer = await act(
        client, parent, button(parent, "::variation::2::"), notifyHook=receiver.url("child")
    )
    child_bodies = await _settled(receiver, "child")
    assert {b["id"] for b in child_bodies} == {answer["result"]}
    assert _each_once(child_bodies) == Counter(GRID_CALLBACKS)
    assert all(b["action"] == "VARIATION" for b in child_bodies)
    assert receiver.bodies["parent"] == parent_bodies


async def test_a_failing_hook_is_not_retried(
    client: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    body = {"prompt": "no retry", "notifyHook": receiver.url("flaky", mode="fail")}
    task_id = await submit_task(client, "/mj/submit/imagine", body)
    await wait_for(client, task_id)
    bodies = await _settled(receiver, "flaky")
    assert _each_once(bodies) == Counter(GRID_CALLBACKS)


async def test_a_hanging_hook_does_not_delay_the_lifecycle(
    client: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    reference = await imagine(client, "reference")
    reference_took = reference["finishTime"] - reference["submitTime"]
    started = time.monotonic()
    body = {"prompt": "hanging hook", "notifyHook": receiver.url("stuck", mode="hang")}
    task_id = await submit_task(client, "/mj/submit/imagine", body)
    done = await wait_for(client, task_id, within=2.0)
    assert time.monotonic() - started < 1.0
    assert done["finishTime"] - done["submitTime"] < reference_took + 500
    assert receiver.bodies["stuck"]


async def test_an_unreachable_hook_does_not_hurt(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    body = {"prompt": "nobody listens", "notifyHook": f"http://127.0.0.1:{port}/hook"}
    task_id = await submit_task(client, "/mj/submit/imagine", body)
    done = await wait_for(client, task_id)
    assert done["status"] == "SUCCESS"


async def test_cancel_is_posted(client: httpx.AsyncClient, receiver: CallbackReceiver) -> None:
    body = {"prompt": "cancel me", "notifyHook": receiver.url("cancel")}
    task_id = await submit_task(client, "/mj/submit/imagine", body)
    assert (await client.post(f"/mj/task/{task_id}/cancel")).json()["code"] == 1
    bodies = await _settled(receiver, "cancel")
    assert [b["status"] for b in bodies].count("CANCEL") == 1
    assert not [b for b in bodies if b["status"] in ("SUCCESS", "FAILURE")]
    assert (await must_fetch(client, task_id))["status"] == "CANCEL"
