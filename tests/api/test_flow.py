"""The whole Midjourney flow through the gateway against a simulator channel."""

from __future__ import annotations

import io

from PIL import Image

from gateway.simulator import RunningSimulator
from tests.conftest import StartGateway


async def test_imagine_then_upscale_then_variation(
    gateway_factory: StartGateway, simulator: RunningSimulator
) -> None:
    gateway = await gateway_factory()
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=1_000_000)

    response = await client.post("/mj/submit/imagine", {"prompt": "a red fox", "state": "s-1"})
    assert response.status_code == 200, response.text
    submitted = response.json()
    assert submitted["code"] == 1
    task_id = submitted["result"]
    assert task_id.isdigit()
    assert len(task_id) == 16
    assert await client.balance() == 900_000

    task = await client.wait_for(task_id, {"SUCCESS", "FAILURE"})
    assert task["status"] == "SUCCESS", task
    assert task["progress"] == "100%"
    assert task["state"] == "s-1"
    assert task["imageUrl"].startswith(gateway.base_url + f"/mj/image/{task_id}?")
    assert simulator.base_url not in str(task)
    labels = [b["label"] for b in task["buttons"]]
    assert labels[:4] == ["U1", "U2", "U3", "U4"]

    image = await gateway.http.get(task["imageUrl"])
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).format == "PNG"

    u1 = next(b for b in task["buttons"] if b["label"] == "U1")
    response = await client.post(
        "/mj/submit/action", {"taskId": task_id, "customId": u1["customId"]}
    )
    assert response.status_code == 200, response.text
    upscale = await client.wait_for(response.json()["result"], {"SUCCESS", "FAILURE"})
    assert upscale["status"] == "SUCCESS"
    assert upscale["action"] == "UPSCALE"
    assert await client.balance() == 850_000

    response = await client.post(
        "/mj/submit/change", {"taskId": task_id, "action": "VARIATION", "index": 1}
    )
    assert response.status_code == 200, response.text
    variation = await client.wait_for(response.json()["result"], {"SUCCESS", "FAILURE"})
    assert variation["status"] == "SUCCESS"
    assert await client.balance() == 750_000
