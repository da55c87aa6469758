"""Images: real PNGs served under /attachments without auth, grids, upscales, previews."""

from __future__ import annotations

import asyncio
import io
import time
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from gateway.simulator import RunningSimulator
from tests.conftest import StartSimulator
from tests.simulator.helpers import (
    ACCEPTED,
    Task,
    act,
    blend,
    button,
    connect,
    download_image,
    http_client,
    imagine,
    message_hash,
    must_fetch,
    submit_task,
    upscale,
    wait_for,
)

SIDE = 128


@pytest.fixture
async def small(simulator_factory: StartSimulator) -> RunningSimulator:
    return await simulator_factory(image_size_px=SIDE)


def _assert_attachment_url(sim: RunningSimulator, task: Task) -> str:
    url = task["imageUrl"]
    assert isinstance(url, str), task
    prefix = f"{sim.base_url}/attachments/{task['id']}/"
    assert url.startswith(prefix), url
    name = url[len(prefix) :]
    assert name.endswith(".png"), url
    assert "/" not in name
    return name


async def test_grid_is_a_png_of_the_configured_side(small: RunningSimulator) -> None:
    async with connect(small) as client:
        task = await imagine(client)
    name = _assert_attachment_url(small, task)
    assert message_hash(task) in name
    picture = await download_image(task["imageUrl"])
    assert picture.format == "PNG"
    assert picture.size == (SIDE, SIDE)
    assert picture.content_type.startswith("image/png")


async def test_grid_holds_four_different_images(small: RunningSimulator) -> None:
    async with connect(small) as client:
        task = await imagine(client)
    async with http_client() as anonymous:
        content = (await anonymous.get(task["imageUrl"])).content
    with Image.open(io.BytesIO(content)) as image:
        rgb = image.convert("RGB")
    half = SIDE // 2
    tiles = [rgb.crop((x, y, x + half, y + half)).tobytes() for y in (0, half) for x in (0, half)]
    assert len(set(tiles)) == 4


async def test_upscale_is_a_single_png(small: RunningSimulator) -> None:
    async with connect(small) as client:
        grid = await imagine(client)
        single = await upscale(client, grid, index=2)
    name = _assert_attachment_url(small, single)
    assert message_hash(single) in name
    assert single["imageUrl"] != grid["imageUrl"]
    picture = await download_image(single["imageUrl"])
    assert picture.format == "PNG"
    assert picture.content_type.startswith("image/png")
    async with http_client() as anonymous:
        grid_bytes = (await anonymous.get(grid["imageUrl"])).content
        single_bytes = (await anonymous.get(single["imageUrl"])).content
    assert grid_bytes != single_bytes


async def _grid_child(client: httpx.AsyncClient, fragment: str, from_upscale: bool) -> Task:
    parent = await imagine(client)
    if from_upscale:
        parent = await upscale(client, parent)
    answer = await act(client, parent, button(parent, fragment))
    assert answer["code"] in ACCEPTED, answer
    return await wait_for(client, answer["result"])


@pytest.mark.parametrize(
    ("fragment", "from_upscale"),
    [("::variation::1::", False), ("::reroll::", False), ("MJ::Outpaint::50::", True)],
)
async def test_child_grids_are_pngs(
    small: RunningSimulator, fragment: str, from_upscale: bool
) -> None:
    async with connect(small) as client:
        task = await _grid_child(client, fragment, from_upscale)
    assert message_hash(task) in _assert_attachment_url(small, task)
    picture = await download_image(task["imageUrl"])
    assert picture.format == "PNG"
    assert picture.size == (SIDE, SIDE)


async def test_blend_grid_is_a_png(small: RunningSimulator) -> None:
    async with connect(small) as client:
        task = await blend(client)
    _assert_attachment_url(small, task)
    assert (await download_image(task["imageUrl"])).format == "PNG"


async def test_preview_is_a_smaller_png(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(image_size_px=SIDE, speed_factor=200)
    async with connect(sim) as client:
        task_id = await submit_task(client, "/mj/submit/imagine", {"prompt": "a preview"})
        deadline = time.monotonic() + 10.0
        preview_url: str | None = None
        while preview_url is None and time.monotonic() < deadline:
            task = await must_fetch(client, task_id)
            assert task["status"] != "SUCCESS", "finished before a preview was seen"
            if task["status"] == "IN_PROGRESS" and task["imageUrl"]:
                preview_url = task["imageUrl"]
            else:
                await asyncio.sleep(0.003)
        assert preview_url is not None
        preview = await download_image(preview_url)
        done = await wait_for(client, task_id, within=10.0)
    assert preview_url.startswith(f"{sim.base_url}/attachments/{task_id}/")
    assert preview_url != done["imageUrl"]
    assert preview.format == "PNG"
    final = await download_image(done["imageUrl"])
    assert preview.size[0] < final.size[0]
    assert preview.size[1] < final.size[1]


async def test_public_base_url_is_used_for_images(simulator_factory: StartSimulator) -> None:
    sim = await simulator_factory(public_base_url="http://images.example.test:9999")
    async with connect(sim) as client:
        task = await imagine(client)
    url = task["imageUrl"]
    assert url.startswith(f"http://images.example.test:9999/attachments/{task['id']}/")
    local = sim.base_url + urlsplit(url).path
    assert (await download_image(local)).format == "PNG"


async def test_images_are_stable_across_downloads(client: httpx.AsyncClient) -> None:
    task = await imagine(client)
    async with http_client() as anonymous:
        first = await anonymous.get(task["imageUrl"])
        second = await anonymous.get(task["imageUrl"])
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.content[:8] == b"\x89PNG\r\n\x1a\n"
