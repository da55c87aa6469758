"""A web client in a real browser: a page served from another origin calls the gateway with
``mj-api-secret``, polls a task, draws its image on a canvas and reads the pixels back, then
confirms a Vary (Region) modal with a mask it drew itself, sent as bare base64.

Chromium is Debian's (``apt-get install chromium``), driven by Playwright, which downloads
nothing here; where it is not installed, these tests are skipped.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from PIL import Image
from playwright.async_api import Page, async_playwright

from tests.api.helpers import IMAGINE_PRICE, PRICE, start_sim
from tests.conftest import Client, StartGateway, StartSimulator

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium (Debian: chromium)")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>web client</title></head>
<body><canvas id="picture"></canvas><canvas id="mask" width="64" height="64"></canvas></body>
</html>"""

# The client: what a web client written against midjourney-proxy does, in the page's origin.
CLIENT_JS = """
window.mj = {
  async call(base, key, path, body) {
    const init = {headers: {"mj-api-secret": key}};
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const answer = await fetch(base + path, init);
    return {status: answer.status, body: await answer.json()};
  },
  async until(base, key, id, statuses) {
    for (let i = 0; i < 500; i++) {
      const {body} = await this.call(base, key, `/mj/task/${id}/fetch`);
      if (statuses.includes(body.status)) return body;
      await new Promise((done) => setTimeout(done, 20));
    }
    throw new Error(`task ${id} never reached ${statuses}`);
  },
  async pixels(url, points) {
    const image = new Image();
    image.crossOrigin = "anonymous";
    await new Promise((done, fail) => {
      image.onload = done;
      image.onerror = fail;
      image.src = url;
    });
    const canvas = document.getElementById("picture");
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    return points.map(([x, y]) => Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3)));
  },
  bareMask() {
    const canvas = document.getElementById("mask");
    const context = canvas.getContext("2d");
    context.fillStyle = "black";
    context.fillRect(0, 0, 64, 64);
    context.fillStyle = "white";
    context.fillRect(16, 16, 32, 32);
    return canvas.toDataURL("image/png").split(",")[1];
  },
};
"""


@pytest.fixture
async def page() -> AsyncIterator[tuple[Page, str]]:
    """A browser page on a site of its own origin, and that origin."""

    async def home(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    site = web.Application()
    site.router.add_get("/", home)
    runner = web.AppRunner(site, shutdown_timeout=1.0)
    await runner.setup()
    server = web.TCPSite(runner, "127.0.0.1", 0)
    await server.start()
    origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            tab = await browser.new_page()
            await tab.goto(origin)
            await tab.add_script_tag(content=CLIENT_JS)
            yield tab, origin
        finally:
            await browser.close()
            await runner.cleanup()


async def _call(page: Page, client: Client, path: str, body: Any = None) -> dict[str, Any]:
    args = [client.gateway.base_url, client.key, path, body]
    answer: dict[str, Any] = await page.evaluate(
        "([base, key, path, body]) => mj.call(base, key, path, body ?? undefined)", args
    )
    return answer


async def _until(page: Page, client: Client, task_id: str, *statuses: str) -> dict[str, Any]:
    task: dict[str, Any] = await page.evaluate(
        "([base, key, id, statuses]) => mj.until(base, key, id, statuses)",
        [client.gateway.base_url, client.key, task_id, list(statuses)],
    )
    return task


async def test_a_page_of_another_origin_submits_polls_and_reads_the_pixels(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    page: tuple[Page, str],
) -> None:
    tab, origin = page
    gateway = await gateway_factory()
    await gateway.add_channel(await start_sim(simulator_factory))
    client = await gateway.client_with_key(balance_units=10 * IMAGINE_PRICE)

    submitted = await _call(tab, client, "/mj/submit/imagine", {"prompt": "a red fox"})
    assert (submitted["status"], submitted["body"]["code"]) == (200, 1), submitted
    task = await _until(tab, client, submitted["body"]["result"], "SUCCESS", "FAILURE")
    assert task["status"] == "SUCCESS", task
    assert task["imageUrl"].startswith(gateway.base_url)
    assert origin != gateway.base_url

    points = [[5, 5], [300, 40], [100, 400], [480, 480]]
    seen = await tab.evaluate(
        "([url, points]) => mj.pixels(url, points)", [task["imageUrl"], points]
    )
    async with httpx.AsyncClient() as plain:
        picture = Image.open(io.BytesIO((await plain.get(task["imageUrl"])).content)).convert("RGB")
    for (x, y), rgb in zip(points, seen, strict=True):
        expected = picture.getpixel((x, y))
        assert all(abs(a - b) <= 2 for a, b in zip(rgb, expected, strict=True)), (x, y, rgb)
    assert await client.balance() == 9 * IMAGINE_PRICE


async def test_a_vary_region_modal_with_a_bare_base64_mask_succeeds(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    page: tuple[Page, str],
) -> None:
    tab, _ = page
    gateway = await gateway_factory()
    await gateway.add_channel(await start_sim(simulator_factory))
    start = 10 * IMAGINE_PRICE
    client = await gateway.client_with_key(balance_units=start)

    grid_id = (await _call(tab, client, "/mj/submit/imagine", {"prompt": "a harbour"}))["body"]
    grid = await _until(tab, client, grid_id["result"], "SUCCESS")
    u1 = next(b["customId"] for b in grid["buttons"] if b["label"] == "U1")
    upscale_answer = await _call(
        tab, client, "/mj/submit/action", {"taskId": grid["id"], "customId": u1}
    )
    upscale = await _until(tab, client, upscale_answer["body"]["result"], "SUCCESS")
    region = next(b["customId"] for b in upscale["buttons"] if b["label"] == "Vary (Region)")

    opened = await _call(
        tab, client, "/mj/submit/action", {"taskId": upscale["id"], "customId": region}
    )
    assert opened["body"]["code"] == 21, opened
    mask = await tab.evaluate("() => mj.bareMask()")
    assert not mask.startswith("data:")
    body = {"taskId": opened["body"]["result"], "prompt": "a lighthouse", "maskBase64": mask}
    confirmed = await _call(tab, client, "/mj/submit/modal", body)
    assert (confirmed["status"], confirmed["body"]["code"]) == (200, 1), confirmed
    varied = await _until(tab, client, confirmed["body"]["result"], "SUCCESS", "FAILURE")
    assert (varied["status"], varied["action"]) == ("SUCCESS", "VARIATION"), varied
    spent = PRICE["mj_imagine"] + PRICE["mj_upscale"] + PRICE["mj_modal"]
    assert await client.balance() == start - spent
