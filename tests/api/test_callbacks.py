"""Upstream callbacks: tasks updated at once, lost answers recovered by the hold sweeper."""

from __future__ import annotations

import asyncio

import httpx

from gateway.billing.reconciliation import reconcile
from gateway.domain import Channel
from gateway.simulator import RunningSimulator
from gateway.storage.holds import Held
from gateway.tasks.callbacks import callback_url
from tests.api.helpers import upstream_id
from tests.conftest import SIMULATOR_SECRET, Client, Gateway, StartGateway, StartSimulator
from tests.support import hold_imagine

IMAGINE_UNITS = 100_000
START_UNITS = 1_000_000
NO_POLLING = {"poll_interval_s": 3600.0}


async def test_callbacks_bring_a_task_to_success_without_polling(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await simulator_factory(speed_factor=300.0)
    with_callbacks = await gateway_factory(callbacks=True, relay=NO_POLLING)
    await with_callbacks.add_channel(simulator)
    await asyncio.sleep(0.2)  # the poller's first round is behind us
    client = await with_callbacks.client_with_key(balance_units=START_UNITS)

    answer = await client.post("/mj/submit/imagine", {"prompt": "a quail"})
    task = await client.wait_for(answer.json()["result"], {"SUCCESS", "FAILURE"}, timeout_s=20)

    assert task["status"] == "SUCCESS"
    assert task["progress"] == "100%"
    assert task["buttons"]
    assert task["imageUrl"].startswith(with_callbacks.base_url)
    assert await client.balance() == START_UNITS - IMAGINE_UNITS


async def test_without_callbacks_the_same_task_waits_for_the_poller(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await simulator_factory(speed_factor=300.0)
    gateway = await gateway_factory(relay=NO_POLLING)
    await gateway.add_channel(simulator)
    await asyncio.sleep(0.2)
    client = await gateway.client_with_key(balance_units=START_UNITS)

    answer = await client.post("/mj/submit/imagine", {"prompt": "a quail"})
    await asyncio.sleep(2.0)  # the simulator finished it well before this
    task = (await client.get(f"/mj/task/{answer.json()['result']}/fetch")).json()

    assert task["status"] in {"SUBMITTED", "NOT_START"}


async def _held_task(client: Client) -> Held:
    return await hold_imagine(
        client.gateway.services.pool, client.user_id, await client.key_id(), IMAGINE_UNITS
    )


async def _channel(gateway: Gateway, simulator: RunningSimulator) -> Channel:
    """The simulator added as a channel, as the gateway sees it (callback token included)."""
    channel = await gateway.services.channels.get(await gateway.add_channel(simulator))
    assert channel is not None
    return channel


async def _expire(gateway: Gateway, held: Held) -> None:
    await gateway.services.pool.execute(
        "UPDATE holds SET deadline = now() - interval '1 second' WHERE id = $1", held.hold_id
    )


async def test_a_submit_whose_process_died_is_kept_when_its_channel_has_the_task(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await simulator_factory(speed_factor=300.0)
    gateway = await gateway_factory(callbacks=True, relay=NO_POLLING)
    channel = await _channel(gateway, simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)
    held = await _held_task(client)
    hook = callback_url(gateway.base_url, channel, held.task_id)
    sent = await gateway.http.post(  # what the dead process sent, before it could settle
        f"{simulator.base_url}/mj/submit/imagine",
        json={"prompt": "a quail", "notifyHook": hook},
        headers={"mj-api-secret": SIMULATOR_SECRET},
    )
    sent_id = sent.json()["result"]
    pool = gateway.services.pool
    for _ in range(200):
        if await pool.fetchval(
            "SELECT count(*) FROM upstream_claims WHERE task_id = $1", held.task_id
        ):
            break
        await asyncio.sleep(0.02)
    assert await client.balance() == START_UNITS - IMAGINE_UNITS  # held, not yet kept

    await _expire(gateway, held)
    swept = await gateway.services.sweeper.sweep()
    await gateway.services.poller.run_once()

    assert swept == (1, 0)  # (settled, released)
    row = await pool.fetchrow(
        "SELECT status, upstream_task_id FROM tasks WHERE id = $1", held.task_id
    )
    assert row["upstream_task_id"] == sent_id
    task = await client.wait_for(str(held.task_id), {"SUCCESS"}, timeout_s=5)
    assert task["status"] == "SUCCESS"
    assert await client.balance() == START_UNITS - IMAGINE_UNITS
    assert (await reconcile(pool, hold_grace_s=0)).ok


async def test_a_submit_no_channel_has_is_released_at_its_deadline(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await simulator_factory()
    gateway = await gateway_factory(callbacks=True, relay=NO_POLLING)
    channel_id = await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)
    held = await _held_task(client)
    pool = gateway.services.pool
    await pool.execute(  # a claim the channel cannot confirm
        "INSERT INTO upstream_claims (task_id, channel_id, upstream_task_id) VALUES ($1, $2, $3)",
        held.task_id,
        channel_id,
        "1234567890",
    )

    await _expire(gateway, held)
    assert await gateway.services.sweeper.sweep() == (0, 1)  # (settled, released)

    assert await pool.fetchval("SELECT status FROM tasks WHERE id = $1", held.task_id) == "REJECTED"
    assert await client.balance() == START_UNITS
    assert (await reconcile(pool, hold_grace_s=0)).ok


async def test_an_answer_lost_mid_flight_is_not_charged_and_its_callback_changes_nothing(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await simulator_factory(speed_factor=300.0)
    gateway = await gateway_factory(
        callbacks=True, upstream={"submit_timeout_s": 0.3, "max_attempts": 1}
    )
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)

    answer = await client.post("/mj/submit/imagine", {"prompt": "a quail [[sim:slow=1]]"})
    assert (answer.status_code, answer.json()["code"]) == (504, 23)
    await asyncio.sleep(2.0)  # the simulator made the task and called back meanwhile

    pool = gateway.services.pool
    task = await pool.fetchrow("SELECT id, status FROM tasks WHERE user_id = $1", client.user_id)
    assert task["status"] == "REJECTED"  # the callbacks that came after changed nothing
    assert await client.balance() == START_UNITS
    assert (await reconcile(pool, hold_grace_s=0)).ok


async def test_callbacks_are_refused_without_the_channel_token(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await simulator_factory()
    gateway = await gateway_factory(callbacks=True)
    channel = await _channel(gateway, simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)
    answer = await client.post("/mj/submit/imagine", {"prompt": "a quail"})
    task_id = int(answer.json()["result"])
    good = callback_url(gateway.base_url, channel, task_id)
    http: httpx.AsyncClient = gateway.http
    fake = {"id": "1", "status": "SUCCESS", "progress": "100%"}

    wrong_token = await http.post(good.replace(channel.callback_token, "guess"), json=fake)
    not_a_task = await http.post(good, json={"hello": "world"})
    unknown_task = await http.post(good.replace(str(task_id), "42"), json=fake)

    assert (wrong_token.status_code, wrong_token.json()["code"]) == (404, 21)
    assert (not_a_task.status_code, not_a_task.json()["code"]) == (400, 21)
    assert unknown_task.status_code == 404


async def test_late_callbacks_change_nothing_and_a_follow_up_needs_no_poll(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    simulator = await simulator_factory(speed_factor=300.0)
    gateway = await gateway_factory(callbacks=True, relay=NO_POLLING)
    channel = await _channel(gateway, simulator)
    await asyncio.sleep(0.2)
    client = await gateway.client_with_key(balance_units=START_UNITS)
    task_id = (await client.post("/mj/submit/imagine", {"prompt": "a swan"})).json()["result"]
    done = await client.wait_for(task_id, {"SUCCESS"}, timeout_s=20)
    upstream = await upstream_id(gateway, task_id)
    hook = callback_url(gateway.base_url, channel, int(task_id))

    late = {"id": upstream, "status": "IN_PROGRESS", "progress": "40%"}
    answers = [(await gateway.http.post(hook, json=late)).json() for _ in range(2)]
    upscale = next(b["customId"] for b in done["buttons"] if b["label"] == "U1")
    follow_up = await client.post("/mj/submit/action", {"taskId": task_id, "customId": upscale})

    assert answers == [{"outcome": "stale"}] * 2
    assert (await client.get(f"/mj/task/{task_id}/fetch")).json() == done
    assert follow_up.json()["code"] == 1, follow_up.text
