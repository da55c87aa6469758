"""Endpoints with special answers: upload-discord-images and insight-face/swap."""

from __future__ import annotations

import httpx

from tests.simulator.helpers import (
    CallbackReceiver,
    download_image,
    png_data_url,
    submit,
    submit_task,
    wait_for,
)


async def test_upload_discord_images_answers_urls(client: httpx.AsyncClient) -> None:
    images = [png_data_url((255, 0, 0), (40, 24)), png_data_url((0, 255, 0), (16, 16))]
    answer = await submit(client, "/mj/submit/upload-discord-images", {"base64Array": images})
    assert answer["code"] == 1, answer
    urls = answer["result"]
    assert isinstance(urls, list)
    assert len(urls) == len(images)
    assert len(set(urls)) == len(urls)
    for url in urls:
        assert isinstance(url, str)
        assert url.startswith("http")
        picture = await download_image(url)
        assert picture.format is not None
    assert (await client.get("/mj/task/list")).json() == []


async def test_upload_rejects_a_bad_image(client: httpx.AsyncClient) -> None:
    answer = await submit(
        client, "/mj/submit/upload-discord-images", {"base64Array": ["not-a-data-url"]}
    )
    assert answer["code"] == 4, answer


async def test_face_swap_is_a_swap_face_task_without_buttons(
    client: httpx.AsyncClient, receiver: CallbackReceiver
) -> None:
    body = {
        "sourceBase64": png_data_url((250, 200, 150)),
        "targetBase64": png_data_url((20, 40, 60)),
        "notifyHook": receiver.url("swap"),
        "state": "face",
    }
    task_id = await submit_task(client, "/mj/insight-face/swap", body, codes=(1,))
    task = await wait_for(client, task_id)
    assert task["action"] == "SWAP_FACE"
    assert task["state"] == "face"
    assert task["buttons"] in ([], None)
    assert task["progress"] == "100%"
    assert (await download_image(task["imageUrl"])).format is not None
    bodies = await receiver.wait_terminal("swap")
    assert {b["progress"] for b in bodies} <= {"0%", "100%", None}
    assert [b["status"] for b in bodies].count("SUCCESS") == 1
