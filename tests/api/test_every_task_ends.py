"""Every task reaches an end: timeouts and forgotten tasks fail, and are refunded once."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import asyncpg

from tests.api.helpers import RED, upstream_id
from tests.conftest import SIMULATOR_SECRET, Client, StartGateway, StartSimulator
from tests.support import TcpProxy, imagine_task

IMAGINE_UNITS = 100_000
DESCRIBE_UNITS = 50_000
START_UNITS = 1_000_000


async def _refunds(pool: asyncpg.Pool, task_id: str) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM ledger WHERE task_id = $1 AND kind = 'REFUND'", int(task_id)
    )
    return count


async def test_a_task_the_upstream_forgets_fails_and_is_refunded_once(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"forgotten_after_polls": 3})
    simulator = await simulator_factory(task_timeout_s=5000)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)

    response = await client.post("/mj/submit/imagine", {"prompt": "a moth [[sim:forget]]"})
    assert response.json()["code"] == 1, response.text
    task_id = response.json()["result"]
    assert await client.balance() == START_UNITS - IMAGINE_UNITS

    task = await client.wait_for(task_id, {"FAILURE", "SUCCESS"}, timeout_s=15)
    assert task["status"] == "FAILURE"
    assert task["failReason"] == "the upstream no longer knows this task"
    assert task["finishTime"] is not None
    assert await client.balance() == START_UNITS
    for _ in range(3):
        await gateway.services.poller.run_once()
    assert await client.balance() == START_UNITS
    assert await _refunds(gateway.services.pool, task_id) == 1


async def test_more_open_tasks_than_a_poll_round_takes_are_each_asked_about_in_turn(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"poll_max_tasks": 2})
    simulator = await simulator_factory(task_timeout_s=5000)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)
    stalled = [
        (await client.post("/mj/submit/imagine", {"prompt": f"a moth {n} [[sim:stall]]"})).json()
        for n in range(3)
    ]
    assert [answer["code"] for answer in stalled] == [1, 1, 1]

    # The three stalled tasks come first by id, and a round takes only two: the finished task
    # after them is reached only because each round goes on from where the last stopped.
    response = await client.post("/mj/submit/imagine", {"prompt": "a quick moth"})
    task = await client.wait_for(response.json()["result"], {"FAILURE", "SUCCESS"}, timeout_s=15)
    assert task["status"] == "SUCCESS"
    for answer in stalled:
        shown = (await client.get(f"/mj/task/{answer['result']}/fetch")).json()
        assert shown["status"] == "IN_PROGRESS"  # asked about too, and still running


async def test_a_task_open_past_the_timeout_fails_and_is_refunded_once(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"task_timeout_s": 1.0})
    simulator = await simulator_factory(task_timeout_s=100_000, speed_factor=1.0)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)

    response = await client.post("/mj/submit/imagine", {"prompt": "a slow snail"})
    task_id = response.json()["result"]
    assert await client.balance() == START_UNITS - IMAGINE_UNITS

    task = await client.wait_for(task_id, {"FAILURE", "SUCCESS"}, timeout_s=15)
    assert task["status"] == "FAILURE"
    assert task["failReason"].startswith("timed out")
    assert await client.balance() == START_UNITS
    assert await _refunds(gateway.services.pool, task_id) == 1


async def test_a_task_the_upstream_keeps_is_never_counted_as_forgotten(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"forgotten_after_polls": 2})
    simulator = await simulator_factory(task_timeout_s=5000, speed_factor=30)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)

    response = await client.post("/mj/submit/imagine", {"prompt": "a heron"})
    task = await client.wait_for(response.json()["result"], {"FAILURE", "SUCCESS"}, timeout_s=20)
    assert task["status"] == "SUCCESS", task["failReason"]
    assert await client.balance() == START_UNITS - IMAGINE_UNITS


async def test_a_hold_left_by_a_dead_submit_is_released_after_its_deadline(
    gateway_factory: StartGateway,
) -> None:
    gateway = await gateway_factory(
        relay={"hold_deadline_s": 0.2},
        upstream={"max_attempts": 1, "connect_timeout_s": 0.05, "submit_timeout_s": 0.1},
    )
    client = await gateway.client_with_key(balance_units=START_UNITS)
    principal, _rate = await gateway.services.auth.authenticate(f"Bearer {client.key}", None, None)
    held = await gateway.services.billing.hold_new_task(
        imagine_task(
            client.user_id, principal.key_id, IMAGINE_UNITS, "never sent", submit_time_ms=0
        )
    )
    assert await client.balance() == START_UNITS - IMAGINE_UNITS

    await asyncio.sleep(0.3)
    await gateway.services.poller.run_once()
    await gateway.services.poller.run_once()

    assert await client.balance() == START_UNITS
    pool = gateway.services.pool
    kinds = await pool.fetch("SELECT kind FROM ledger WHERE task_id = $1 ORDER BY id", held.task_id)
    assert [row["kind"] for row in kinds] == ["HOLD", "RELEASE"]
    assert await pool.fetchval("SELECT status FROM tasks WHERE id = $1", held.task_id) == "REJECTED"
    response = await client.get(f"/mj/task/{held.task_id}/fetch")
    assert response.status_code == 404


async def test_a_task_cancelled_upstream_is_refunded_once_to_user_and_key(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    simulator = await simulator_factory(task_timeout_s=100_000, speed_factor=1.0)
    await gateway.add_channel(simulator)
    pool = gateway.services.pool
    user_id = await gateway.create_user("jack", START_UNITS)
    key = await gateway.issue_key(user_id, quota_units=5 * IMAGINE_UNITS)
    client = Client(gateway, user_id, key)

    response = await client.post("/mj/submit/imagine", {"prompt": "a slow tortoise"})
    task_id = response.json()["result"]
    sim_id = await upstream_id(gateway, task_id)
    cancelled = await gateway.http.post(
        f"{simulator.base_url}/mj/task/{sim_id}/cancel",
        headers={"mj-api-secret": SIMULATOR_SECRET},
    )
    assert cancelled.json()["code"] == 1, cancelled.text

    task = await client.wait_for(task_id, {"CANCEL", "FAILURE", "SUCCESS"}, timeout_s=15)
    assert task["status"] == "CANCEL"
    for _ in range(3):
        await gateway.services.poller.run_once()
    assert await client.balance() == START_UNITS
    key_left = await pool.fetchval(
        "SELECT quota_remaining_units FROM api_keys WHERE user_id = $1", user_id
    )
    assert key_left == 5 * IMAGINE_UNITS
    assert await _refunds(pool, task_id) == 1


async def test_an_action_times_out_after_its_own_timeout(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"task_timeouts_s": {"IMAGINE": 1.0}})
    simulator = await simulator_factory(task_timeout_s=100_000, speed_factor=1.0)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)

    imagine = await client.post("/mj/submit/imagine", {"prompt": "a slow snail"})
    describe = await client.post("/mj/submit/describe", {"base64": RED})
    task = await client.wait_for(imagine.json()["result"], {"FAILURE", "SUCCESS"}, timeout_s=15)
    other = (await client.get(f"/mj/task/{describe.json()['result']}/fetch")).json()

    assert task["status"] == "FAILURE"
    assert task["failReason"].startswith("timed out")
    assert other["status"] not in {"FAILURE", "SUCCESS"}  # the default timeout is far off
    assert await client.balance() == START_UNITS - DESCRIBE_UNITS


async def test_tasks_outlive_a_channel_that_stops_answering_for_a_while(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    # Down for ~40 poll rounds (a minute at the default interval), against a limit of 2 missing
    # polls: a channel that does not answer counts no missing poll, so nothing is "forgotten".
    gateway = await gateway_factory(relay={"forgotten_after_polls": 2, "poll_interval_s": 0.05})
    simulator = await simulator_factory(speed_factor=100.0)
    host, port = urlsplit(simulator.base_url).hostname, urlsplit(simulator.base_url).port
    proxy = await TcpProxy(lambda: asyncio.open_connection(host, port)).start()
    await gateway.add_channel(simulator, base_url=f"http://127.0.0.1:{proxy.port}")
    client = await gateway.client_with_key(balance_units=START_UNITS)
    ids = [
        (await client.post("/mj/submit/imagine", {"prompt": f"a crab {n}"})).json()["result"]
        for n in range(5)
    ]

    await proxy.cut()
    await asyncio.sleep(2.0)
    during = {(await client.get(f"/mj/task/{i}/fetch")).json()["status"] for i in ids}
    await proxy.start()
    tasks = [await client.wait_for(i, {"SUCCESS", "FAILURE"}, timeout_s=20) for i in ids]

    await proxy.cut()
    assert not during & {"SUCCESS", "FAILURE"}
    assert {t["status"] for t in tasks} == {"SUCCESS"}
    assert await client.balance() == START_UNITS - 5 * IMAGINE_UNITS
