"""Channel choice and failover against several real simulators.

A new task goes to the first channel that takes it: higher priority tiers first, weighted random
order inside a tier, the next channel when one is down, full or out of accounts. A follow-up
(action, change, modal, image-seed) only ever goes to the channel of its parent task.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from gateway.simulator import RunningSimulator
from tests.api.helpers import (
    IMAGINE_PRICE,
    assert_error,
    button,
    imagine_done,
    set_faults,
    sim_requests,
    sim_stats,
    sim_submits,
    sim_tasks,
    start_sim,
    submitted_id,
    task_channel,
)
from tests.conftest import Client, Gateway, StartGateway, StartSimulator

START = 10_000_000


async def _tasks_by_channel(gateway: Gateway, user_id: int) -> Counter[int]:
    rows = await gateway.services.pool.fetch(
        "SELECT channel_id, count(*) AS n FROM tasks"
        " WHERE user_id = $1 AND channel_id IS NOT NULL AND status <> 'REJECTED'"
        " GROUP BY channel_id",
        user_id,
    )
    return Counter({row["channel_id"]: row["n"] for row in rows})


async def _imagines(client: Client, count: int, prompt: str = "a cat") -> list[str]:
    ids = []
    for number in range(count):
        response = await client.post("/mj/submit/imagine", {"prompt": f"{prompt} {number}"})
        ids.append(submitted_id(response))
    return ids


# --- a new task runs on another channel when one cannot take it ----------------------------------


BROKEN_FIRST_CHOICES: list[Any] = [
    pytest.param("stopped", {}, id="stopped"),
    pytest.param("faults", {"faults": {"http_500": 1.0}}, id="http-500"),
    pytest.param("faults", {"faults": {"not_json": 1.0}}, id="not-json"),
    pytest.param("faults", {"faults": {"drop_connection": 1.0}}, id="dropped-connection"),
    pytest.param("faults", {"faults": {"system_error": 1.0}}, id="system-error-9"),
    pytest.param("faults", {"faults": {"queue_full": 1.0}}, id="queue-full-faults"),
    pytest.param("faults", {"accounts": 1, "core_size": 1, "queue_size": 0}, id="really-full"),
    pytest.param("faults", {"accounts": 0}, id="no-accounts"),
    pytest.param("faults", {"faults": {"http_401": 1.0}}, id="wrong-secret-401"),
]


@pytest.mark.parametrize(("kind", "settings"), BROKEN_FIRST_CHOICES)
async def test_task_runs_on_the_next_channel_when_the_first_cannot_take_it(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    kind: str,
    settings: dict[str, Any],
) -> None:
    gateway = await gateway_factory()
    broken = await start_sim(simulator_factory, speed_factor=5, **settings)
    good = await start_sim(simulator_factory)
    broken_id = await gateway.add_channel(broken, name="broken", priority=1)
    good_id = await gateway.add_channel(good, name="good", priority=0)
    client = await gateway.client_with_key(balance_units=START)
    if kind == "stopped":
        await broken.stop()
    elif "core_size" in settings:
        occupier = await gateway.client_with_key(balance_units=START, name="occupier")
        first = submitted_id(await occupier.post("/mj/submit/imagine", {"prompt": "first"}))
        assert await task_channel(gateway, first) == broken_id

    ids = await _imagines(client, 3)

    for task_id in ids:
        assert await task_channel(gateway, task_id) == good_id
    assert await sim_requests(gateway.http, good, "submit/imagine") == 3
    assert await sim_tasks(gateway.http, good) == 3
    if kind != "stopped":
        tried = await sim_requests(gateway.http, broken, "submit/imagine")
        assert tried >= 1  # it was asked first (at least until a cooldown)
        assert await sim_tasks(gateway.http, broken) == (1 if "core_size" in settings else 0)
    assert await client.balance() == START - 3 * IMAGINE_PRICE
    for task_id in ids:
        task = await client.wait_for(task_id, {"SUCCESS", "FAILURE"})
        assert task["status"] == "SUCCESS", task


async def test_three_channels_two_broken_in_one_tier(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    """Equal weights: whichever order the gateway draws, every task ends on the working one."""
    gateway = await gateway_factory()
    down = await start_sim(simulator_factory)
    full = await start_sim(simulator_factory, faults={"queue_full": 1.0})
    good = await start_sim(simulator_factory)
    await gateway.add_channel(down, name="down")
    await gateway.add_channel(full, name="full")
    good_id = await gateway.add_channel(good, name="good")
    await down.stop()
    client = await gateway.client_with_key(balance_units=START)

    ids = await _imagines(client, 12)

    assert {await task_channel(gateway, task_id) for task_id in ids} == {good_id}
    assert await sim_tasks(gateway.http, good) == 12
    assert await sim_tasks(gateway.http, full) == 0
    assert await client.balance() == START - 12 * IMAGINE_PRICE


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"accounts": 0}, id="no-accounts-3"),
        pytest.param({"faults": {"http_401": 1.0}}, id="wrong-secret-401"),
    ],
)
async def test_channel_without_accounts_or_with_a_wrong_secret_is_cooled_down(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, settings: dict[str, Any]
) -> None:
    """Contract: code 3 and HTTP 401/403 put the channel in cooldown; the next submits skip it."""
    gateway = await gateway_factory()
    broken = await start_sim(simulator_factory, **settings)
    good = await start_sim(simulator_factory)
    await gateway.add_channel(broken, name="broken", priority=1)
    good_id = await gateway.add_channel(good, name="good", priority=0)
    client = await gateway.client_with_key(balance_units=START)

    ids = await _imagines(client, 5)

    assert {await task_channel(gateway, task_id) for task_id in ids} == {good_id}
    assert await sim_requests(gateway.http, broken, "submit/imagine") == 1


# --- a follow-up never leaves its channel --------------------------------------------------------


async def _task_on_first_channel(
    gateway: Gateway, simulator_factory: StartSimulator
) -> tuple[RunningSimulator, RunningSimulator, Client, dict[str, Any]]:
    """A SUCCESS imagine on channel "home", then a second working channel "other"."""
    home = await start_sim(simulator_factory)
    await gateway.add_channel(home, name="home")
    client = await gateway.client_with_key(balance_units=START)
    task = await imagine_done(client)
    other = await start_sim(simulator_factory)
    await gateway.add_channel(other, name="other")
    return home, other, client, task


FOLLOW_UP_FAULTS = [
    pytest.param("http_500", 502, 23, id="http-500"),
    pytest.param("not_json", 502, 23, id="not-json"),
    pytest.param("drop_connection", 502, 23, id="dropped-connection"),
    pytest.param("system_error", 502, 23, id="system-error-9"),
    pytest.param("queue_full", 503, 23, id="queue-full"),
    pytest.param("no_account", 503, 24, id="no-account-3"),
    pytest.param("slow", 504, 23, id="timeout"),
]


@pytest.mark.parametrize(("fault", "status", "code"), FOLLOW_UP_FAULTS)
async def test_follow_up_stays_on_its_failing_channel(
    gateway_factory: StartGateway,
    simulator_factory: StartSimulator,
    fault: str,
    status: int,
    code: int,
) -> None:
    gateway = await gateway_factory(upstream={"submit_timeout_s": 0.3})
    home, other, client, task = await _task_on_first_channel(gateway, simulator_factory)
    balance = await client.balance()
    await set_faults(gateway.http, home, **{fault: 1.0, "slow_answer_s": 0.6})

    follow_ups = [
        ("/mj/submit/action", {"taskId": task["id"], "customId": button(task, "U1")}),
        ("/mj/submit/action", {"taskId": task["id"], "customId": button(task, "V2")}),
        ("/mj/submit/change", {"taskId": task["id"], "action": "UPSCALE", "index": 3}),
        ("/mj/submit/simple-change", {"content": f"{task['id']} V4"}),
        ("/mj/submit/change", {"taskId": task["id"], "action": "REROLL"}),
    ]
    for path, body in follow_ups:
        retry_after = True if code == 23 and status == 503 else None
        assert_error(await client.post(path, body), status, code, retry_after=retry_after)

    assert await client.balance() == balance
    assert await sim_submits(gateway.http, other) == 0
    assert await sim_tasks(gateway.http, other) == 0
    home_requests = (await sim_stats(gateway.http, home))["requests"]
    assert home_requests.get("submit/action", 0) == 2
    assert home_requests.get("submit/change", 0) + home_requests.get("submit/simple-change", 0) == 3

    # A new task is free to go elsewhere, and does.
    fresh = submitted_id(await client.post("/mj/submit/imagine", {"prompt": "a new cat"}))
    assert await sim_tasks(gateway.http, other) == 1
    assert await task_channel(gateway, fresh) != await task_channel(gateway, task["id"])


async def test_follow_ups_and_image_seed_stay_on_a_stopped_channel(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    home, other, client, task = await _task_on_first_channel(gateway, simulator_factory)

    seed = await client.get(f"/mj/task/{task['id']}/image-seed")
    assert seed.status_code == 200, seed.text
    assert seed.json()["code"] == 1
    assert seed.json()["result"].isdigit()
    assert await sim_requests(gateway.http, home, "task/image-seed") == 1

    # A follow-up that works lands on the parent's channel even with another one available.
    upscale = submitted_id(
        await client.post(
            "/mj/submit/action", {"taskId": task["id"], "customId": button(task, "U1")}
        )
    )
    assert await task_channel(gateway, upscale) == await task_channel(gateway, task["id"])
    upscaled = await client.wait_for(upscale, {"SUCCESS", "FAILURE"})
    assert upscaled["status"] == "SUCCESS", upscaled
    balance = await client.balance()

    await home.stop()

    assert_error(await client.get(f"/mj/task/{task['id']}/image-seed"), 502, 23)
    assert_error(await client.get(f"/mj/task/{upscale}/image-seed"), 502, 23)
    for path, body in [
        ("/mj/submit/action", {"taskId": task["id"], "customId": button(task, "U2")}),
        ("/mj/submit/change", {"taskId": task["id"], "action": "VARIATION", "index": 1}),
        ("/mj/submit/action", {"taskId": upscale, "customId": button(upscaled, "CustomZoom")}),
    ]:
        assert_error(await client.post(path, body), 502, 23)

    assert await client.balance() == balance
    other_requests = (await sim_stats(gateway.http, other))["requests"]
    assert other_requests.get("task/image-seed", 0) == 0
    assert await sim_submits(gateway.http, other) == 0


async def test_modal_confirmation_stays_on_its_channel(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    home, other, client, task = await _task_on_first_channel(gateway, simulator_factory)
    upscale = submitted_id(
        await client.post(
            "/mj/submit/action", {"taskId": task["id"], "customId": button(task, "U1")}
        )
    )
    upscaled = await client.wait_for(upscale, {"SUCCESS", "FAILURE"})
    zoom = submitted_id(
        await client.post(
            "/mj/submit/action", {"taskId": upscale, "customId": button(upscaled, "CustomZoom")}
        ),
        code=21,
    )
    balance = await client.balance()
    await set_faults(gateway.http, home, http_500=1.0)

    response = await client.post("/mj/submit/modal", {"taskId": zoom, "prompt": "wide --zoom 2"})

    assert_error(response, 502, 23)
    assert await client.balance() == balance
    assert await sim_submits(gateway.http, other) == 0
    assert (await client.get(f"/mj/task/{zoom}/fetch")).json()["status"] == "MODAL"

    await set_faults(gateway.http, home, http_500=0.0)
    assert (
        submitted_id(
            await client.post("/mj/submit/modal", {"taskId": zoom, "prompt": "wide --zoom 2"})
        )
        == zoom
    )
    assert await task_channel(gateway, zoom) == await task_channel(gateway, task["id"])
    assert await sim_submits(gateway.http, other) == 0


# --- priority tiers and weights ------------------------------------------------------------------


async def test_higher_priority_channel_takes_everything_while_it_works(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    top = await start_sim(simulator_factory, accounts=4)
    low_a = await start_sim(simulator_factory)
    low_b = await start_sim(simulator_factory)
    top_id = await gateway.add_channel(top, name="top", priority=10, weight=1)
    low_a_id = await gateway.add_channel(low_a, name="low-a", priority=0, weight=50)
    low_b_id = await gateway.add_channel(low_b, name="low-b", priority=0, weight=50)
    client = await gateway.client_with_key(balance_units=START)

    first = await _imagines(client, 20)

    assert {await task_channel(gateway, task_id) for task_id in first} == {top_id}
    assert await sim_requests(gateway.http, low_a, "submit/imagine") == 0
    assert await sim_requests(gateway.http, low_b, "submit/imagine") == 0

    await set_faults(gateway.http, top, http_500=1.0)
    second = await _imagines(client, 20, prompt="a dog")

    used = {await task_channel(gateway, task_id) for task_id in second}
    assert used <= {low_a_id, low_b_id}
    assert len(used) == 2  # both lower channels share the load (each 1/2; 2 * 0.5**20 to miss)
    assert await sim_tasks(gateway.http, top) == 20


async def test_weighted_choice_follows_the_weights(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    total = 2_000
    # Slow polling: the point is the submits, not 2,000 tasks' progress steps.
    # A fixed seed makes the 2,000 draws repeatable, so the bound cannot flake.
    gateway = await gateway_factory(relay={"poll_interval_s": 5.0}, upstream={"routing_seed": 2})
    light = await start_sim(simulator_factory, accounts=30, seed=11)
    heavy = await start_sim(simulator_factory, accounts=30, seed=12)
    light_id = await gateway.add_channel(light, name="light", weight=1)
    heavy_id = await gateway.add_channel(heavy, name="heavy", weight=3)
    client = await gateway.client_with_key(balance_units=total * IMAGINE_PRICE)
    gate = asyncio.Semaphore(32)

    async def one(number: int) -> int:
        async with gate:
            response = await client.post("/mj/submit/imagine", {"prompt": f"cat {number}"})
        submitted_id(response)
        return number

    done = await asyncio.gather(*(one(number) for number in range(total)))

    assert len(done) == total
    by_channel = await _tasks_by_channel(gateway, client.user_id)
    assert sum(by_channel.values()) == total
    light_share = by_channel[light_id] / total
    heavy_share = by_channel[heavy_id] / total
    print(f"weighted choice over {total}: light {light_share:.2%}, heavy {heavy_share:.2%}")
    assert abs(light_share - 0.25) <= 0.03, by_channel
    assert abs(heavy_share - 0.75) <= 0.03, by_channel
    # Every task was the channel's first choice: no refusals shifted the count.
    assert await sim_requests(gateway.http, light, "submit/imagine") == by_channel[light_id]
    assert await sim_requests(gateway.http, heavy, "submit/imagine") == by_channel[heavy_id]
    assert await client.balance() == 0
