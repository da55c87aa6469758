"""Helpers shared by the error-table and failover tests: the simulators' control surface, the
gateway's own tables, and the one error shape the contract fixes."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from gateway.simulator import RunningSimulator
from tests.conftest import SIMULATOR_SECRET, Client, Gateway, StartSimulator

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


def assert_submitted(response: httpx.Response, code: int = 1) -> str:
    """An accepted submit: HTTP 200 with ``code`` and a gateway task id; returns the id."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == code, body
    task_id = body["result"]
    assert isinstance(task_id, str), body
    assert task_id.isdigit(), body
    assert len(task_id) <= 16, body
    return task_id


async def imagine_done(client: Client, prompt: str = "a red fox") -> dict[str, Any]:
    """Submit an imagine and wait until it is SUCCESS; the task object."""
    task_id = assert_submitted(await client.post("/mj/submit/imagine", {"prompt": prompt}))
    task = await client.wait_for(task_id, {"SUCCESS", "FAILURE", "CANCEL"})
    assert task["status"] == "SUCCESS", task
    return task


def button(task: dict[str, Any], label: str) -> str:
    """The customId of the button of ``task`` whose label (or customId part) is ``label``."""
    for candidate in task["buttons"]:
        if candidate.get("label") == label or label in candidate["customId"]:
            custom_id: str = candidate["customId"]
            return custom_id
    raise AssertionError(f"no button {label!r} in {task['buttons']}")


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
