"""Task endpoints: list, list-by-condition, image-seed, cancel."""

from __future__ import annotations

import httpx

from tests.conftest import StartSimulator
from tests.simulator.helpers import (
    UNKNOWN_ID,
    connect,
    imagine,
    modal,
    must_fetch,
    submit,
    submit_task,
    upscale,
    wait_for,
)
from tests.support import TASK_KEYS


async def test_list_returns_every_task(client: httpx.AsyncClient) -> None:
    ids = {
        await submit_task(client, "/mj/submit/imagine", {"prompt": f"list {i}"}) for i in range(3)
    }
    response = await client.get("/mj/task/list")
    assert response.status_code == 200
    tasks = response.json()
    assert {t["id"] for t in tasks} == ids
    assert all(set(t) >= TASK_KEYS for t in tasks)


async def test_list_by_condition_drops_unknown_ids(client: httpx.AsyncClient) -> None:
    first = await imagine(client, "first")
    second = await submit_task(client, "/mj/submit/imagine", {"prompt": "second"})
    response = await client.post(
        "/mj/task/list-by-condition", json={"ids": [UNKNOWN_ID, second, first["id"], "abc"]}
    )
    assert response.status_code == 200
    tasks = response.json()
    assert sorted(t["id"] for t in tasks) == sorted([first["id"], second])
    assert all(set(t) >= TASK_KEYS for t in tasks)
    by_id = {t["id"]: t for t in tasks}
    assert by_id[first["id"]]["status"] == "SUCCESS"
    assert by_id[first["id"]]["imageUrl"] == first["imageUrl"]


async def test_list_by_condition_of_nothing_known_is_empty(client: httpx.AsyncClient) -> None:
    response = await client.post("/mj/task/list-by-condition", json={"ids": [UNKNOWN_ID]})
    assert response.status_code == 200
    assert response.json() == []
    response = await client.post("/mj/task/list-by-condition", json={"ids": []})
    assert response.json() == []


async def test_list_by_condition_does_not_keep_the_order(client: httpx.AsyncClient) -> None:
    ids = [
        await submit_task(client, "/mj/submit/imagine", {"prompt": f"order {i}"}) for i in range(6)
    ]
    orders = [ids, ids[::-1], ids[1:] + ids[:1]]
    kept = []
    for asked in orders:
        answer = (await client.post("/mj/task/list-by-condition", json={"ids": asked})).json()
        got = [t["id"] for t in answer]
        assert sorted(got) == sorted(asked)
        kept.append(got == asked)
    assert not all(kept)


async def test_image_seed_of_a_finished_task(client: httpx.AsyncClient) -> None:
    task = await imagine(client)
    response = await client.get(f"/mj/task/{task['id']}/image-seed")
    assert response.status_code == 200
    answer = response.json()
    assert answer["code"] == 1, answer
    assert isinstance(answer["result"], str)
    assert answer["result"].isdigit()


async def test_image_seed_of_an_unfinished_task_is_4(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(speed_factor=10)
    async with connect(sim) as client:
        task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "running"})
        answer = (await client.get(f"/mj/task/{task_id}/image-seed")).json()
    assert answer["code"] == 4, answer
    assert answer["result"] is None


async def test_image_seed_of_a_modal_task_is_4(client: httpx.AsyncClient) -> None:
    parent = await upscale(client, await imagine(client))
    custom = next(b["customId"] for b in parent["buttons"] if "CustomZoom" in b["customId"])
    opened = await submit(client, "/mj/submit/action", {"taskId": parent["id"], "customId": custom})
    assert opened["code"] == 21, opened
    answer = (await client.get(f"/mj/task/{opened['result']}/image-seed")).json()
    assert answer["code"] == 4, answer


async def test_image_seed_of_an_unknown_task(client: httpx.AsyncClient) -> None:
    answer = (await client.get(f"/mj/task/{UNKNOWN_ID}/image-seed")).json()
    assert answer["code"] in (3, 4), answer
    assert answer["result"] is None


async def test_cancel_a_running_task(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(speed_factor=100)
    async with connect(sim) as client:
        doomed = await submit_task(client, "/mj/submit/imagine", {"prompt": "doomed"})
        witness = await submit_task(client, "/mj/submit/imagine", {"prompt": "witness"})
        await wait_for(client, doomed, statuses=("SUBMITTED", "IN_PROGRESS"))
        response = await client.post(f"/mj/task/{doomed}/cancel")
        assert response.status_code == 200
        assert response.json()["code"] == 1, response.json()
        task = await must_fetch(client, doomed)
        assert task["status"] == "CANCEL"
        await wait_for(client, witness, within=10.0)
        later = await must_fetch(client, doomed)
    assert later["status"] == "CANCEL"
    assert later["buttons"] in ([], None)


async def test_cancel_a_queued_task(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(accounts=1, core_size=1, queue_size=2, speed_factor=200)
    async with connect(sim) as client:
        running = await submit_task(client, "/mj/submit/imagine", {"prompt": "r"}, codes=(1,))
        queued = await submit_task(client, "/mj/submit/imagine", {"prompt": "q"}, codes=(22,))
        after = await submit_task(client, "/mj/submit/imagine", {"prompt": "a"}, codes=(22,))
        assert (await must_fetch(client, queued))["status"] == "NOT_START"
        assert (await client.post(f"/mj/task/{queued}/cancel")).json()["code"] == 1
        assert (await must_fetch(client, queued))["status"] == "CANCEL"
        first = await wait_for(client, running, within=10.0)
        last = await wait_for(client, after, within=10.0)
        cancelled = await must_fetch(client, queued)
    assert cancelled["status"] == "CANCEL"
    assert cancelled["startTime"] is None
    assert last["startTime"] >= first["finishTime"]


async def test_cancel_frees_the_slot(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(accounts=1, core_size=1, queue_size=0, speed_factor=10)
    async with connect(sim) as client:
        first = await submit_task(client, "/mj/submit/imagine", {"prompt": "one"}, codes=(1,))
        full = await submit(client, "/mj/submit/imagine", {"prompt": "two"})
        assert full["code"] == 23, full
        assert (await client.post(f"/mj/task/{first}/cancel")).json()["code"] == 1
        again = await submit(client, "/mj/submit/imagine", {"prompt": "three"})
    assert again["code"] == 1, again


async def test_cancel_leaves_a_finished_task_alone(client: httpx.AsyncClient) -> None:
    task = await imagine(client)
    response = await client.post(f"/mj/task/{task['id']}/cancel")
    assert response.status_code == 200
    assert (await must_fetch(client, task["id"]))["status"] == "SUCCESS"


async def test_cancel_a_modal_task(client: httpx.AsyncClient) -> None:
    parent = await upscale(client, await imagine(client))
    custom = next(b["customId"] for b in parent["buttons"] if "CustomZoom" in b["customId"])
    opened = await submit(client, "/mj/submit/action", {"taskId": parent["id"], "customId": custom})
    assert opened["code"] == 21, opened
    assert (await client.post(f"/mj/task/{opened['result']}/cancel")).json()["code"] == 1
    assert (await must_fetch(client, opened["result"]))["status"] == "CANCEL"
    refused = await modal(client, opened["result"], prompt="late --zoom 1.5")
    assert refused["code"] in (3, 4), refused


async def test_cancel_of_an_unknown_task(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/mj/task/{UNKNOWN_ID}/cancel")
    assert response.status_code == 200
    assert response.json()["code"] in (3, 4)
