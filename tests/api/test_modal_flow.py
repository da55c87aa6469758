"""Custom Zoom and Vary (Region): the action answers 21 with a MODAL task, /submit/modal runs it.

Contract: the modal action is HTTP 200 code 21 with ``result`` = the new task id (status MODAL),
nothing is charged for it, and the charge (mj_modal) moves to the /submit/modal call.
"""

from __future__ import annotations

from typing import Any

from gateway.simulator import RunningSimulator
from tests.api.helpers import (
    MASK,
    PRICE,
    START_BALANCE,
    Task,
    assert_error,
    assert_own_image_url,
    button,
    sim_task,
    start,
    submit,
    submitted_id,
    succeed,
)
from tests.conftest import Client, Gateway, StartGateway

UPSCALED = START_BALANCE - PRICE["mj_imagine"] - PRICE["mj_upscale"]


async def _upscaled(client: Client) -> tuple[str, Task]:
    imagine_id = await submit(client, "/mj/submit/imagine", {"prompt": "a misty harbour"})
    grid = await succeed(client, imagine_id)
    body = {"taskId": imagine_id, "customId": button(grid, label="U1")}
    upscale_id = await submit(client, "/mj/submit/action", body)
    upscale = await succeed(client, upscale_id)
    assert await client.balance() == UPSCALED
    return upscale_id, upscale


async def _open_modal(
    gateway: Gateway, simulator: RunningSimulator, client: Client, parent_id: str, custom_id: str
) -> str:
    """Press a modal button: 200/21 with a new MODAL task, nothing charged."""
    response = await client.post("/mj/submit/action", {"taskId": parent_id, "customId": custom_id})
    modal_id = submitted_id(response, code=21)
    assert modal_id != parent_id
    assert await client.balance() == UPSCALED
    fetched = await client.get(f"/mj/task/{modal_id}/fetch")
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["status"] == "MODAL", fetched.json()
    upstream = await sim_task(gateway, simulator, modal_id)
    assert upstream.status.value == "MODAL"
    assert upstream.properties["customId"] == custom_id
    await gateway.services.poller.run_once()
    assert (await client.get(f"/mj/task/{modal_id}/fetch")).json()["status"] == "MODAL"
    assert await client.balance() == UPSCALED
    return modal_id


async def _confirm(
    gateway: Gateway, client: Client, modal_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """/submit/modal accepted (code 1), charged mj_modal once, and the task runs to SUCCESS."""
    task_id = submitted_id(await client.post("/mj/submit/modal", {"taskId": modal_id, **body}))
    assert await client.balance() == UPSCALED - PRICE["mj_modal"]
    task = await succeed(client, task_id)
    for _ in range(3):
        await gateway.services.poller.run_once()
    assert await client.balance() == UPSCALED - PRICE["mj_modal"]
    return task


async def test_custom_zoom_through_modal(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    upscale_id, upscale = await _upscaled(client)
    zoom = button(upscale, prefix="MJ::CustomZoom::")
    modal_id = await _open_modal(gateway, simulator, client, upscale_id, zoom)

    task = await _confirm(gateway, client, modal_id, {"prompt": "a misty harbour --zoom 1.5"})
    assert task["action"] == "ZOOM"
    assert_own_image_url(gateway, simulator, task)
    upstream = await sim_task(gateway, simulator, modal_id)
    assert upstream.status.value == "SUCCESS"
    assert upstream.prompt == "a misty harbour --zoom 1.5"


async def test_custom_zoom_refused_modal_charges_nothing_and_can_be_retried(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    upscale_id, upscale = await _upscaled(client)
    zoom = button(upscale, prefix="MJ::CustomZoom::")
    modal_id = await _open_modal(gateway, simulator, client, upscale_id, zoom)

    refused = await client.post(
        "/mj/submit/modal", {"taskId": modal_id, "prompt": "a misty harbour --zoom 3"}
    )
    assert_error(refused, 400, 21)
    assert await client.balance() == UPSCALED
    assert (await sim_task(gateway, simulator, modal_id)).status.value == "MODAL"
    assert (await client.get(f"/mj/task/{modal_id}/fetch")).json()["status"] == "MODAL"

    task = await _confirm(gateway, client, modal_id, {"prompt": "a misty harbour --zoom 2"})
    assert task["action"] == "ZOOM"


async def test_vary_region_through_modal(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    upscale_id, upscale = await _upscaled(client)
    inpaint = button(upscale, prefix="MJ::Inpaint::")
    modal_id = await _open_modal(gateway, simulator, client, upscale_id, inpaint)

    body = {"prompt": "a red boat in the harbour", "maskBase64": MASK}
    task = await _confirm(gateway, client, modal_id, body)
    assert task["action"] == "VARIATION"
    assert_own_image_url(gateway, simulator, task)
    upstream = await sim_task(gateway, simulator, modal_id)
    assert upstream.prompt == "a red boat in the harbour"
