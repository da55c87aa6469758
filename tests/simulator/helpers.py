"""Shared helpers of the simulator conformance suite.

A client bound to one simulator, submit/fetch wrappers, bounded polling, the button sets
UPSTREAM.md documents, sample images as data URLs, image downloads and a callback receiver.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import ssl
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web
from PIL import Image

from gateway.simulator import RunningSimulator
from tests.conftest import SIMULATOR_SECRET

Task = dict[str, Any]
Answer = dict[str, Any]

TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCEL"})
GRID_PROGRESS = ("0%", "15%", "31%", "46%", "62%", "78%", "93%")
GRID_CALLBACKS = (
    ("SUBMITTED", "0%"),
    *(("IN_PROGRESS", p) for p in GRID_PROGRESS),
    ("SUCCESS", "100%"),
)
ACCEPTED = (1, 22)
UNKNOWN_ID = "1000000000000000"

NO_ACCOUNT = "无可用的账号实例"
QUEUE_FULL = "队列已满，请稍后尝试"
PARENT_MISSING = "关联任务不存在或已失效"
TIMEOUT_REASON = "任务超时"


_TLS = ssl.create_default_context()


def http_client(**options: Any) -> httpx.AsyncClient:
    """A plain client; the TLS context is built once, as building it costs ~0.1 s per client."""
    return httpx.AsyncClient(verify=_TLS, timeout=10.0, **options)


@asynccontextmanager
async def connect(
    sim: RunningSimulator, secret: str | None = SIMULATOR_SECRET
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on ``sim`` sending ``secret`` as mj-api-secret (none when ``None``)."""
    headers = {"mj-api-secret": secret} if secret is not None else {}
    async with http_client(base_url=sim.base_url, headers=headers) as client:
        yield client


async def submit(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Answer:
    """POST a submit body; the answer must be HTTP 200 JSON with code, description and result."""
    response = await client.post(path, json=body)
    assert response.status_code == 200, f"{path}: HTTP {response.status_code} {response.text!r}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    answer: Answer = response.json()
    assert {"code", "description", "result"} <= set(answer), answer
    return answer


async def submit_task(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], codes: Collection[int] = ACCEPTED
) -> str:
    """Submit and return the new task id; the code must be one of ``codes``."""
    answer = await submit(client, path, body)
    assert answer["code"] in codes, f"{path} {body!r}: {answer!r}"
    task_id = answer["result"]
    assert isinstance(task_id, str), answer
    return task_id


async def fetch(client: httpx.AsyncClient, task_id: str) -> Task | None:
    """The task JSON, or ``None`` when the simulator answers 200 with an empty body."""
    response = await client.get(f"/mj/task/{task_id}/fetch")
    assert response.status_code == 200, f"fetch {task_id}: HTTP {response.status_code}"
    if not response.content:
        return None
    task: Task = response.json()
    return task


async def must_fetch(client: httpx.AsyncClient, task_id: str) -> Task:
    task = await fetch(client, task_id)
    assert task is not None, f"task {task_id} unknown to the simulator"
    return task


async def wait_for(
    client: httpx.AsyncClient,
    task_id: str,
    statuses: Collection[str] = ("SUCCESS",),
    within: float = 5.0,
    interval: float = 0.005,
) -> Task:
    """Poll until the task reaches one of ``statuses``; fail on another end or on the deadline."""
    deadline = time.monotonic() + within
    last: Task | None = None
    while time.monotonic() < deadline:
        last = await fetch(client, task_id)
        if last is not None:
            if last["status"] in statuses:
                return last
            if last["status"] in TERMINAL:
                raise AssertionError(
                    f"task {task_id} ended {last['status']} ({last['failReason']!r}), "
                    f"wanted {sorted(statuses)}"
                )
        await asyncio.sleep(interval)
    raise AssertionError(f"task {task_id} not {sorted(statuses)} within {within}s: {last!r}")


async def wait_until_gone(client: httpx.AsyncClient, task_id: str, within: float = 5.0) -> None:
    """Poll until fetch answers an empty body for ``task_id``."""
    deadline = time.monotonic() + within
    last: Task | None = None
    while time.monotonic() < deadline:
        last = await fetch(client, task_id)
        if last is None:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"task {task_id} still known after {within}s: {last!r}")


async def observe(
    client: httpx.AsyncClient, task_id: str, within: float = 5.0, interval: float = 0.002
) -> list[Task]:
    """Poll until the task is terminal; the snapshots whose (status, progress) changed, in order."""
    deadline = time.monotonic() + within
    seen: list[Task] = []
    while time.monotonic() < deadline:
        task = await must_fetch(client, task_id)
        if not seen or (task["status"], task["progress"]) != (
            seen[-1]["status"],
            seen[-1]["progress"],
        ):
            seen.append(task)
        if task["status"] in TERMINAL:
            return seen
        await asyncio.sleep(interval)
    raise AssertionError(f"task {task_id} not terminal within {within}s: {seen[-1:]!r}")


async def run_task(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], within: float = 5.0
) -> Task:
    """Submit, then wait for SUCCESS."""
    task_id = await submit_task(client, path, body)
    return await wait_for(client, task_id, within=within)


async def imagine(client: httpx.AsyncClient, prompt: str = "a red fox in the snow") -> Task:
    return await run_task(client, "/mj/submit/imagine", {"prompt": prompt})


async def blend(client: httpx.AsyncClient) -> Task:
    body = {"base64Array": [png_data_url((255, 0, 0)), png_data_url((0, 0, 255))]}
    return await run_task(client, "/mj/submit/blend", body)


async def describe(client: httpx.AsyncClient) -> Task:
    return await run_task(client, "/mj/submit/describe", {"base64": png_data_url((0, 128, 0))})


async def shorten(client: httpx.AsyncClient) -> Task:
    body = {"prompt": "a very long and winding prompt about a lighthouse at dusk, oil painting"}
    return await run_task(client, "/mj/submit/shorten", body)


async def act(client: httpx.AsyncClient, parent: Task, custom_id: str, **extra: Any) -> Answer:
    """POST /mj/submit/action for one of ``parent``'s buttons."""
    return await submit(
        client, "/mj/submit/action", {"taskId": parent["id"], "customId": custom_id, **extra}
    )


async def upscale(client: httpx.AsyncClient, grid: Task, index: int = 1) -> Task:
    answer = await act(client, grid, button(grid, f"::upsample::{index}::"))
    assert answer["code"] in ACCEPTED, answer
    return await wait_for(client, answer["result"])


async def modal(client: httpx.AsyncClient, task_id: str, **fields: Any) -> Answer:
    return await submit(client, "/mj/submit/modal", {"taskId": task_id, **fields})


def custom_ids(task: Task) -> list[str]:
    return [b["customId"] for b in task["buttons"]]


def button(task: Task, fragment: str) -> str:
    """The one customId of ``task`` containing ``fragment``."""
    matches = [c for c in custom_ids(task) if fragment in c]
    assert len(matches) == 1, f"{fragment!r} in {custom_ids(task)!r}"
    return matches[0]


def message_hash(task: Task) -> str:
    value = task["properties"]["messageHash"]
    assert isinstance(value, str), task["properties"]
    return value


def grid_buttons(h: str) -> set[str]:
    return {
        *(f"MJ::JOB::upsample::{i}::{h}" for i in range(1, 5)),
        f"MJ::JOB::reroll::0::{h}::SOLO",
        *(f"MJ::JOB::variation::{i}::{h}" for i in range(1, 5)),
    }


UPSCALE_LABELS = {
    "MJ::JOB::upsample_v6_2x_subtle::1::{h}::SOLO": "Upscale (Subtle)",
    "MJ::JOB::upsample_v6_2x_creative::1::{h}::SOLO": "Upscale (Creative)",
    "MJ::JOB::low_variation::1::{h}::SOLO": "Vary (Subtle)",
    "MJ::JOB::high_variation::1::{h}::SOLO": "Vary (Strong)",
    "MJ::Inpaint::1::{h}::SOLO": "Vary (Region)",
    "MJ::Outpaint::50::1::{h}::SOLO": "Zoom Out 2x",
    "MJ::Outpaint::75::1::{h}::SOLO": "Zoom Out 1.5x",
    "MJ::CustomZoom::{h}": "Custom Zoom",
    "MJ::JOB::animate_high::1::{h}::SOLO": "Animate (High motion)",
    "MJ::JOB::animate_low::1::{h}::SOLO": "Animate (Low motion)",
}
PAN_DIRECTIONS = ("left", "right", "up", "down")


def upscale_buttons(h: str) -> set[str]:
    return {
        *(template.format(h=h) for template in UPSCALE_LABELS),
        *(f"MJ::JOB::pan_{d}::1::{h}::SOLO" for d in PAN_DIRECTIONS),
        f"MJ::BOOKMARK::{h}",
    }


DESCRIBE_BUTTONS = {
    *(f"MJ::Job::PicReader::{i}" for i in range(1, 5)),
    "MJ::Picread::Retry",
    "MJ::Job::PicReader::all",
}
SHORTEN_BUTTONS = {f"MJ::Job::PromptAnalyzer::{i}" for i in range(1, 6)}


def assert_buttons(task: Task, expected: set[str]) -> None:
    ids = custom_ids(task)
    assert len(ids) == len(set(ids)), f"duplicate buttons: {ids!r}"
    assert set(ids) == expected, f"extra {set(ids) - expected!r}, missing {expected - set(ids)!r}"


def png_bytes(
    color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 32)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def png_data_url(
    color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 32)
) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(color, size)).decode()


@dataclass(frozen=True)
class Picture:
    """What a downloaded image decoded to."""

    format: str | None
    size: tuple[int, int]
    content_type: str


async def download_image(url: str) -> Picture:
    """GET ``url`` without any credential and decode it with Pillow."""
    async with http_client() as client:
        response = await client.get(url)
    assert response.status_code == 200, f"GET {url}: HTTP {response.status_code}"
    with Image.open(io.BytesIO(response.content)) as image:
        image.load()
        return Picture(image.format, image.size, response.headers.get("content-type", ""))


def assert_spring_400(response: httpx.Response, path: str) -> None:
    assert response.status_code == 400, f"{path}: HTTP {response.status_code} {response.text!r}"
    body = response.json()
    assert isinstance(body.get("timestamp"), str), body
    assert body["timestamp"]
    assert body["status"] == 400, body
    assert body["error"] == "Bad Request", body
    assert body["path"] == path, body


def not_json(content: bytes) -> bool:
    try:
        json.loads(content)
    except ValueError:
        return True
    return False


def pairs(tasks: Iterable[Task]) -> list[tuple[str, str]]:
    return [(t["status"], t["progress"]) for t in tasks]


class CallbackReceiver:
    """A loopback HTTP server recording every POSTed JSON body, per hook name.

    Routes: ``/hook/{name}`` answers 200, ``/fail/{name}`` answers 500, ``/hang/{name}`` holds
    the request open until the receiver stops.
    """

    def __init__(self) -> None:
        self.bodies: defaultdict[str, list[Task]] = defaultdict(list)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._base = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{mode}/{name}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base = f"http://{host}:{port}"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, name: str, mode: str = "hook") -> str:
        return f"{self._base}/{mode}/{name}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.bodies[request.match_info["name"]].append(body)
        mode = request.match_info["mode"]
        if mode == "hang":
            await self._release.wait()
        return web.Response(status=500 if mode == "fail" else 200)

    async def wait_until(
        self, name: str, predicate: Callable[[list[Task]], bool], within: float = 5.0
    ) -> list[Task]:
        """Wait until ``predicate`` holds for the bodies received on ``name``; return them."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if predicate(self.bodies[name]):
                return list(self.bodies[name])
            await asyncio.sleep(0.005)
        raise AssertionError(f"callbacks on {name!r} never matched: {pairs(self.bodies[name])!r}")

    async def wait_terminal(self, name: str, within: float = 5.0) -> list[Task]:
        return await self.wait_until(
            name, lambda bodies: any(b["status"] in TERMINAL for b in bodies), within
        )
