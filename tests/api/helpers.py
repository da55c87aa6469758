"""Helpers of the gateway API tests: setup, sample images, answer checks, simulator look-ups.

Nothing here is a fixture: each test calls ``start`` with the ``gateway_factory`` and simulator it
was given, so every test still owns its own database, Redis prefix and simulator.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import httpx
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from gateway.simulator import RunningSimulator
from gateway.simulator.tasks import Task as SimTask
from tests.conftest import SIMULATOR_SECRET, Client, Gateway, StartGateway
from tests.support import TASK_KEYS

Task = dict[str, Any]

START_BALANCE = 1_000_000
PRICE = {
    "mj_imagine": 100_000,
    "mj_blend": 100_000,
    "mj_shorten": 100_000,
    "mj_modal": 100_000,
    "mj_variation": 100_000,
    "mj_reroll": 100_000,
    "mj_describe": 50_000,
    "mj_upscale": 50_000,
    "mj_upload": 50_000,
    "mj_swap_face": 50_000,
}
DONE = frozenset({"SUCCESS", "FAILURE", "CANCEL"})
UNKNOWN_TASK_ID = "1000000000000000"
KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣")
POLL_ROUTE = "task/list-by-condition"
"""The simulator route the gateway's poller uses; it runs on its own while tasks are open."""


async def start(
    gateway_factory: StartGateway, simulator: RunningSimulator, balance: int = START_BALANCE
) -> tuple[Gateway, Client]:
    """A gateway with the simulator as its one channel, and a user 'alice' with a key."""
    gateway = await gateway_factory()
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=balance)
    return gateway, client


def png_data_url(color: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> str:
    """A real PNG of one colour, as the data URL clients send."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


RED = png_data_url((220, 30, 30))
BLUE = png_data_url((30, 30, 220))
MASK = png_data_url((255, 255, 255), (16, 16))


def submitted_id(response: httpx.Response, code: int = 1) -> str:
    """The gateway task id of a submit answered HTTP 200 with ``code``."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == code, body
    task_id = body["result"]
    assert isinstance(task_id, str), body
    assert task_id.isdigit(), body
    assert len(task_id) <= 16, body
    assert int(task_id) < 2**53, body
    return task_id


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    """The documented error shape ``{code, description, result: null}`` with this status."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body, dict), body
    assert body["code"] == code, body
    assert body["result"] is None, body
    assert isinstance(body.get("description"), str), body
    assert body["description"], body
    return body


async def submit(client: Client, path: str, body: dict[str, Any]) -> str:
    return submitted_id(await client.post(path, body))


async def succeed(client: Client, task_id: str, timeout_s: float = 5.0) -> Task:
    """Wait for the task to end; it must have ended in SUCCESS, looking like the contract's."""
    task = await client.wait_for(task_id, set(DONE), timeout_s)
    assert task["status"] == "SUCCESS", task
    assert task["id"] == task_id
    assert task["progress"] == "100%", task
    assert_task_shape(task)
    return task


def assert_task_shape(task: Task) -> None:
    assert set(task) >= TASK_KEYS, sorted(TASK_KEYS - set(task))
    assert isinstance(task["id"], str)
    assert isinstance(task["progress"], str)
    assert isinstance(task["buttons"], list)
    assert isinstance(task["properties"], dict)
    for key in ("submitTime", "startTime", "finishTime"):
        assert task[key] is None or isinstance(task[key], int), (key, task[key])
    if task["status"] == "SUCCESS":
        assert task["submitTime"] <= task["startTime"] <= task["finishTime"], task


def assert_own_image_url(gateway: Gateway, simulator: RunningSimulator, task: Task) -> None:
    """imageUrl is the gateway's signed /mj/image/{id} URL, and the upstream host shows nowhere."""
    url = task["imageUrl"]
    assert isinstance(url, str), task
    parsed = httpx.URL(url)
    assert str(parsed.copy_with(query=None)) == f"{gateway.base_url}/mj/image/{task['id']}", url
    assert parsed.params.get("exp", "").isdigit(), url
    assert parsed.params.get("sig"), url
    assert_no_upstream_host(simulator, task)


def assert_no_upstream_host(simulator: RunningSimulator, value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    host_port = simulator.base_url.split("://", 1)[1]
    assert host_port not in text, text


async def upstream_id(gateway: Gateway, task_id: str) -> str:
    """The upstream's id of a gateway task, read from the gateway's database."""
    found = await gateway.services.pool.fetchval(
        "SELECT upstream_task_id FROM tasks WHERE id = $1", int(task_id)
    )
    assert isinstance(found, str), f"task {task_id} has no upstream id"
    return found


async def sim_task(gateway: Gateway, simulator: RunningSimulator, task_id: str) -> SimTask:
    """The simulator's own task behind a gateway task."""
    task = simulator.engine.store.get(await upstream_id(gateway, task_id))
    assert task is not None, f"the simulator has no task for gateway task {task_id}"
    return task


async def sim_requests(gateway: Gateway, simulator: RunningSimulator) -> dict[str, int]:
    """Requests the simulator has served, by route, from GET /sim/stats (itself left out)."""
    response = await gateway.http.get(
        f"{simulator.base_url}/sim/stats", headers={"mj-api-secret": SIMULATOR_SECRET}
    )
    assert response.status_code == 200, response.text
    requests: dict[str, int] = response.json()["requests"]
    return {route: count for route, count in requests.items() if route != "sim/stats"}


def numbered_parts(text: str | None) -> list[str]:
    """A describe/shorten answer split on its blank lines."""
    assert isinstance(text, str), text
    return [part.strip() for part in text.split("\n\n") if part.strip()]


def button(task: Task, *, label: str | None = None, prefix: str | None = None) -> str:
    """The customId of the one button with this label, or whose customId starts with prefix."""
    found = [
        b["customId"]
        for b in task["buttons"]
        if (label is not None and b["label"] == label)
        or (prefix is not None and b["customId"].startswith(prefix))
    ]
    assert len(found) == 1, (label, prefix, task["buttons"])
    return found[0]


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` in a ``/metrics`` text whose labels include
    ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def scrape(gateway: Gateway) -> str:
    """The gateway's ``/metrics`` text."""
    answer = await gateway.http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text
