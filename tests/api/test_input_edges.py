"""Inputs at the edges: what a careless or hostile client sends never costs money or a 500."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from gateway.simulator import RunningSimulator
from tests.api.helpers import RED, START_BALANCE, assert_error, sim_task, start
from tests.conftest import StartGateway

IMAGINE_UNITS = 100_000


@pytest.mark.parametrize("field", ["prompt", "state"])
async def test_a_nul_character_is_a_parameter_error(
    gateway_factory: StartGateway, simulator: RunningSimulator, field: str
) -> None:
    _, client = await start(gateway_factory, simulator)
    body = {"prompt": "a cat", field: "a\u0000b"}
    response = await client.post("/mj/submit/imagine", body)
    assert response.status_code == 400
    assert response.json()["code"] == 21
    assert await client.balance() == START_BALANCE


@pytest.mark.parametrize("task_id", ["²", "١٢٣", "12345678901234567", "-1", "1e3"])
async def test_ids_that_cannot_be_task_ids_are_unknown_tasks(
    gateway_factory: StartGateway, simulator: RunningSimulator, task_id: str
) -> None:
    _, client = await start(gateway_factory, simulator)
    fetched = await client.get(f"/mj/task/{task_id}/fetch")
    assert (fetched.status_code, fetched.json()["code"]) == (404, 21)
    action = await client.post(
        "/mj/submit/action", {"taskId": task_id, "customId": "MJ::JOB::upsample::1::x"}
    )
    assert (action.status_code, action.json()["code"]) == (404, 21)
    listed = await client.post("/mj/task/list-by-condition", {"ids": [task_id]})
    assert (listed.status_code, listed.json()) == (200, [])
    assert await client.balance() == START_BALANCE


async def test_a_speed_flag_in_the_prompt_cannot_beat_the_price(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    response = await client.post("/mj-relax/mj/submit/imagine", {"prompt": "a fox --turbo --v 6"})
    assert response.json()["code"] == 1, response.text
    task_id = response.json()["result"]
    assert await client.balance() == START_BALANCE - IMAGINE_UNITS // 2
    upstream = await sim_task(gateway, simulator, task_id)
    assert "--turbo" not in upstream.prompt
    assert "--v 6" in upstream.prompt
    fetched = (await client.get(f"/mj/task/{task_id}/fetch")).json()
    assert fetched["prompt"] == "a fox --turbo --v 6"


DEEP = "[" * 100_000 + "]" * 100_000
HOSTILE_BODIES = {
    "not UTF-8": ("/mj/submit/imagine", b'{"prompt":"\xff\xfe bad"}'),
    "overlong UTF-8": ("/mj/submit/imagine", b'{"prompt":"\xc0\xaf"}'),
    "lone surrogate": ("/mj/submit/imagine", b'{"prompt":"\\ud800"}'),
    "deep unknown field": ("/mj/submit/imagine", f'{{"prompt":"a","junk":{DEEP}}}'.encode()),
    "deep upload filter": (
        "/mj/submit/upload-discord-images",
        f'{{"base64Array":["data:image/png;base64,iVBORw0KGgo="],"filter":{{"a":{DEEP}}}}}'.encode(),
    ),
    "deep list ids": ("/mj/task/list-by-condition", f'{{"ids":{DEEP}}}'.encode()),
    "deep list junk": ("/mj/task/list-by-condition", f'{{"ids":[],"x":{DEEP}}}'.encode()),
    "33 levels": ("/mj/submit/imagine", b'{"prompt":"a","x":' + b"[" * 33 + b"]" * 33 + b"}"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_BODIES))
async def test_bodies_that_cannot_be_decoded_are_parameter_errors(
    gateway_factory: StartGateway, simulator: RunningSimulator, case: str
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    path, raw = HOSTILE_BODIES[case]
    response = await gateway.http.post(
        path, content=raw, headers={**client.headers, "Content-Type": "application/json"}
    )
    assert_error(response, 400, 21)
    assert response.json()["description"].startswith("invalid request: ")
    assert await client.balance() == START_BALANCE
    assert await gateway.services.pool.fetchval("SELECT count(*) FROM tasks") == 0


async def test_jpg_and_bare_base64_images_reach_the_upstream_as_data_urls(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    """Web clients send ``data:image/jpg`` and bare base64; both are taken as what their bytes
    are and forwarded as data URLs (the simulator, as the Java proxies, refuses a bare payload)."""
    _, client = await start(gateway_factory, simulator)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, format="JPEG")
    jpeg = base64.b64encode(buffer.getvalue()).decode()
    bare_png = RED.split(",", 1)[1]
    blended = await client.post(
        "/mj/submit/blend", {"base64Array": [f"data:image/jpg;base64,{jpeg}", bare_png]}
    )
    assert blended.json()["code"] == 1, blended.text
    described = await client.post("/mj/submit/describe", {"base64": bare_png})
    assert described.json()["code"] == 1, described.text
    assert await client.balance() == START_BALANCE - 100_000 - 50_000
