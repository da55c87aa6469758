"""Helpers of the gateway API tests: setup, sample images, answer checks, the simulators' control
surface, the gateway's own tables.

Nothing here is a fixture: each test calls ``start`` with the ``gateway_factory`` and simulator it
was given, so every test still owns its own database, Redis prefix and simulator.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import asyncpg
import httpx
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from gateway import admin
from gateway.simulator import RunningSimulator
from gateway.simulator.tasks import Task as SimTask
from tests.conftest import SIMULATOR_SECRET, Client, Gateway, StartGateway, StartSimulator
from tests.support import BOX, TASK_KEYS

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


def numbered_parts(text: str | None) -> list[str]:
    """A describe/shorten answer split on its blank lines."""
    assert isinstance(text, str), text
    return [part.strip() for part in text.split("\n\n") if part.strip()]


def button(task: Task, label: str | None = None, *, prefix: str | None = None) -> str:
    """The customId of the one button whose label is ``label`` or whose customId holds it
    (``"CustomZoom"``, ``"PicReader::1"``), or whose customId starts with ``prefix``."""
    found = [
        b["customId"]
        for b in task["buttons"]
        if (label is not None and (b.get("label") == label or label in b["customId"]))
        or (prefix is not None and b["customId"].startswith(prefix))
    ]
    assert len(found) == 1, (label, prefix, task["buttons"])
    custom_id: str = found[0]
    return custom_id


async def sim_routes(http: httpx.AsyncClient, sim: RunningSimulator) -> dict[str, int]:
    """Requests the simulator has served, by route (its own stats route left out)."""
    requests: dict[str, int] = (await sim_stats(http, sim))["requests"]
    return {route: count for route, count in requests.items() if route != "sim/stats"}


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` in a ``/metrics`` text whose labels include
    ``labels``."""
    # Only that sample's lines are parsed: the whole text of a long-lived test process is large.
    lines = "\n".join(
        line for line in text.splitlines() if line.startswith((f"{name}{{", f"{name} "))
    )
    return sum(
        sample.value
        for family in text_string_to_metric_families(lines + "\n")
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def scrape(gateway: Gateway) -> str:
    """The gateway's ``/metrics`` text."""
    answer = await gateway.http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


SIM_HEADERS = {"mj-api-secret": SIMULATOR_SECRET}
IMAGINE_PRICE = 100_000
DESCRIBE_PRICE = 50_000
UPSCALE_PRICE = 50_000
MODAL_PRICE = 100_000

PNG_1PX = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    "hQGAhKmMIQAAAABJRU5ErkJggg=="
)


SIM_TASK_TIMEOUT_S = 5_000.0
"""Unscaled task timeout of the tests' simulators: 5 s at speed 1000. The default (300 s, so
0.3 s) can fire before a task's chained step timers on a loaded machine."""


async def start_sim(simulator_factory: StartSimulator, **settings: Any) -> RunningSimulator:
    """A simulator as ``simulator_factory`` starts it, with a task timeout tests cannot hit."""
    return await simulator_factory(**({"task_timeout_s": SIM_TASK_TIMEOUT_S} | settings))


def data_url(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


async def sim_stats(http: httpx.AsyncClient, sim: RunningSimulator) -> dict[str, Any]:
    response = await http.get(f"{sim.base_url}/sim/stats", headers=SIM_HEADERS)
    assert response.status_code == 200, response.text
    stats: dict[str, Any] = response.json()
    return stats


async def sim_requests(http: httpx.AsyncClient, sim: RunningSimulator, route: str) -> int:
    """How many requests the simulator got on ``route`` (e.g. ``submit/imagine``)."""
    count: int = (await sim_stats(http, sim))["requests"].get(route, 0)
    return count


async def sim_submits(http: httpx.AsyncClient, sim: RunningSimulator) -> int:
    """Requests on every submit-like route (``submit/*`` and ``insight-face/swap``)."""
    requests: dict[str, int] = (await sim_stats(http, sim))["requests"]
    return sum(n for route, n in requests.items() if route.startswith(("submit/", "insight-face")))


async def sim_tasks(http: httpx.AsyncClient, sim: RunningSimulator) -> int:
    """How many tasks the simulator holds, in any status."""
    tasks: dict[str, int] = (await sim_stats(http, sim))["tasks"]
    return sum(tasks.values())


async def set_faults(http: httpx.AsyncClient, sim: RunningSimulator, **rates: float) -> None:
    response = await http.put(f"{sim.base_url}/sim/faults", json=rates, headers=SIM_HEADERS)
    assert response.status_code == 200, response.text
    for name, rate in rates.items():
        assert response.json()[name] == rate


def assert_error(
    response: httpx.Response, status: int, code: int, *, retry_after: bool | None = None
) -> dict[str, Any]:
    """The contract's error shape: ``status``, ``{code, description, result: null}``; with
    ``retry_after`` True a positive whole-second Retry-After, with False none."""
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert "result" in body, body
    assert body["result"] is None, body
    assert isinstance(body.get("description"), str), body
    assert body["description"].strip(), body
    if retry_after is True:
        value = response.headers.get("Retry-After")
        assert value is not None, dict(response.headers)
        assert value.isdigit(), value
        assert int(value) > 0, value
    elif retry_after is False:
        assert "Retry-After" not in response.headers, dict(response.headers)
    return body


async def imagine_done(client: Client, prompt: str = "a red fox") -> dict[str, Any]:
    """Submit an imagine and wait until it is SUCCESS; the task object."""
    task_id = submitted_id(await client.post("/mj/submit/imagine", {"prompt": prompt}))
    task = await client.wait_for(task_id, {"SUCCESS", "FAILURE", "CANCEL"})
    assert task["status"] == "SUCCESS", task
    return task


async def task_channel(gateway: Gateway, task_id: str) -> int | None:
    channel_id: int | None = await gateway.services.pool.fetchval(
        "SELECT channel_id FROM tasks WHERE id = $1", int(task_id)
    )
    return channel_id


async def ledger_rows(gateway: Gateway, task_id: str, kind: str) -> int:
    count: int = await gateway.services.pool.fetchval(
        "SELECT count(*) FROM ledger WHERE task_id = $1 AND kind = $2", int(task_id), kind
    )
    return count


async def ledger_sum(gateway: Gateway, user_id: int) -> int:
    total: int = await gateway.services.pool.fetchval(
        "SELECT coalesce(sum(amount_units), 0) FROM ledger WHERE user_id = $1", user_id
    )
    return total


async def roomy_channel_and_key(
    pool: asyncpg.Pool, simulator_factory: StartSimulator, user: str
) -> str:
    """A simulator channel with room for every submit of a load test (no queue fills), and a
    key of a new user whose balance never runs out: the key."""
    simulator = await simulator_factory(accounts=8, core_size=50, queue_size=500)
    await admin.add_channel(
        pool, BOX, "sim", simulator.base_url, admin.ChannelChanges(secret=SIMULATOR_SECRET)
    )
    user_id = await admin.create_user(pool, user, 10**15)
    return (await admin.issue_key(pool, user_id)).key
