"""Transport rules: the mj-api-secret check, Spring-style 400s, JSON shapes, unknown ids."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from gateway.simulator import RunningSimulator
from tests.conftest import SIMULATOR_SECRET, StartSimulator
from tests.simulator.helpers import (
    UNKNOWN_ID,
    assert_spring_400,
    connect,
    http_client,
    imagine,
    must_fetch,
    png_data_url,
    submit,
    submit_task,
    wait_for,
)
from tests.support import TASK_KEYS

IMAGE = png_data_url()
OTHER_IMAGE = png_data_url((0, 0, 200))

PROTECTED: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/mj/submit/imagine", {"prompt": "a cat"}),
    ("POST", "/mj/submit/blend", {"base64Array": [IMAGE, OTHER_IMAGE]}),
    ("POST", "/mj/submit/describe", {"base64": IMAGE}),
    ("POST", "/mj/submit/shorten", {"prompt": "a cat"}),
    ("POST", "/mj/submit/action", {"taskId": "{id}", "customId": "MJ::JOB::upsample::1::x"}),
    ("POST", "/mj/submit/modal", {"taskId": "{id}", "prompt": "a cat"}),
    ("POST", "/mj/submit/change", {"taskId": "{id}", "action": "UPSCALE", "index": 1}),
    ("POST", "/mj/submit/simple-change", {"content": "{id} U1"}),
    ("POST", "/mj/submit/upload-discord-images", {"base64Array": [IMAGE]}),
    ("POST", "/mj/insight-face/swap", {"sourceBase64": IMAGE, "targetBase64": OTHER_IMAGE}),
    ("GET", "/mj/task/{id}/fetch", None),
    ("GET", "/mj/task/list", None),
    ("POST", "/mj/task/list-by-condition", {"ids": ["{id}"]}),
    ("GET", "/mj/task/{id}/image-seed", None),
    ("POST", "/mj/task/{id}/cancel", None),
    ("GET", "/sim/health", None),
    ("GET", "/sim/stats", None),
    ("GET", "/sim/faults", None),
    ("PUT", "/sim/faults", {"http_500": 1.0}),
]


def _fill(value: Any, task_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("{id}", task_id)
    if isinstance(value, list):
        return [_fill(v, task_id) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, task_id) for k, v in value.items()}
    return value


BAD_HEADERS: list[dict[str, str]] = [
    {},
    {"mj-api-secret": "wrong"},
    {"mj-api-secret": SIMULATOR_SECRET.upper()},
    {"authorization": f"Bearer {SIMULATOR_SECRET}"},
]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=[p[1] for p in PROTECTED])
async def test_bad_secret_is_401_with_empty_body(
    simulator: RunningSimulator,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "the only task"})
    url = simulator.base_url + _fill(path, task_id)
    async with http_client() as anonymous:
        for headers in BAD_HEADERS:
            response = await anonymous.request(
                method, url, json=_fill(body, task_id), headers=headers
            )
            assert response.status_code == 401, headers
            assert response.content == b"", headers
    listed = (await client.get("/mj/task/list")).json()
    assert [t["id"] for t in listed] == [task_id]
    assert (await must_fetch(client, task_id))["status"] != "CANCEL"
    faults = (await client.get("/sim/faults")).json()
    assert faults["http_500"] == 0.0


@pytest.mark.parametrize("secret", [SIMULATOR_SECRET[:-1], SIMULATOR_SECRET + "x", ""])
async def test_secret_is_compared_exactly(simulator: RunningSimulator, secret: str) -> None:
    async with connect(simulator, secret=secret) as client:
        response = await client.post("/mj/submit/imagine", json={"prompt": "a cat"})
        assert response.status_code == 401
        assert response.content == b""


async def test_right_secret_passes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/sim/health")).status_code == 200
    assert (await client.get("/mj/task/list")).status_code == 200


async def test_no_secret_configured_means_no_check(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(secret=None)
    async with connect(sim, secret=None) as client:
        task = await imagine(client)
        assert task["status"] == "SUCCESS"
    async with connect(sim, secret="anything") as client:
        assert (await client.get(f"/mj/task/{task['id']}/fetch")).json()["id"] == task["id"]


async def test_fetch_of_unknown_id_is_200_with_empty_body(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/mj/task/{UNKNOWN_ID}/fetch")
    assert response.status_code == 200
    assert response.content == b""


async def test_submit_answer_shape_and_id_format(client: httpx.AsyncClient) -> None:
    before = int(time.time() * 1000)
    answer = await submit(client, "/mj/submit/imagine", {"prompt": "a lighthouse"})
    after = int(time.time() * 1000)
    assert answer["code"] == 1
    assert answer["description"] == "提交成功"
    assert isinstance(answer["properties"], dict)
    task_id = answer["result"]
    assert isinstance(task_id, str)
    assert len(task_id) == 16
    assert task_id.isdigit()
    assert before <= int(task_id[:13]) <= after


async def test_ids_are_unique(client: httpx.AsyncClient) -> None:
    ids = set()
    for i in range(10):
        answer = await submit(client, "/mj/submit/imagine", {"prompt": f"unique {i}"})
        ids.add(answer["result"])
    assert len(ids) == 10


async def test_task_json_has_every_key_camel_case_with_nulls(client: httpx.AsyncClient) -> None:
    before = int(time.time() * 1000)
    answer = await submit(client, "/mj/submit/imagine", {"prompt": "a pond"})
    after = int(time.time() * 1000)
    response = await client.get(f"/mj/task/{answer['result']}/fetch")
    assert response.headers["content-type"].startswith("application/json")
    task = response.json()
    assert set(task) >= TASK_KEYS
    assert task["id"] == answer["result"]
    assert task["failReason"] is None
    assert before <= task["submitTime"] <= after
    done = await wait_for(client, task["id"])
    assert set(done) >= TASK_KEYS
    assert all(isinstance(done[k], int) for k in ("submitTime", "startTime", "finishTime"))
    assert isinstance(done["properties"], dict)


BAD_BODIES: list[tuple[str, str | dict[str, Any]]] = [
    ("/mj/submit/imagine", '{"prompt": "a cat"'),
    ("/mj/submit/imagine", "not json at all"),
    ("/mj/submit/blend", "[1, 2"),
    ("/mj/submit/describe", "{'base64': 1}"),
    ("/mj/submit/shorten", "{"),
    ("/mj/submit/action", '{"taskId": }'),
    ("/mj/submit/modal", "}"),
    ("/mj/submit/change", "{,}"),
    ("/mj/submit/simple-change", '{"content"'),
    ("/mj/submit/upload-discord-images", "nope"),
    ("/mj/insight-face/swap", "{{}}"),
    ("/mj/task/list-by-condition", '{"ids": ['),
    ("/mj/submit/imagine", {"prompt": "a cat", "botType": "NOT_A_BOT"}),
    ("/mj/submit/imagine", {"prompt": "a cat", "accountFilter": {"modes": ["SLOW"]}}),
    ("/mj/submit/blend", {"base64Array": [IMAGE, OTHER_IMAGE], "dimensions": "ROUND"}),
    ("/mj/submit/change", {"taskId": UNKNOWN_ID, "action": "EXPLODE", "index": 1}),
]


@pytest.mark.parametrize(("path", "body"), BAD_BODIES)
async def test_bad_json_or_enum_is_spring_400(
    client: httpx.AsyncClient, path: str, body: str | dict[str, Any]
) -> None:
    if isinstance(body, str):
        response = await client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
    else:
        response = await client.post(path, json=body)
    assert_spring_400(response, path)
    assert (await client.get("/mj/task/list")).json() == []
