"""Rate limits are exact across replicas: two ``gateway serve`` processes on one database and one
Redis, under more concurrent requests than the limits allow."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis

from gateway import admin
from gateway.domain import KeySettings
from tests.api.helpers import PRICE, assert_error, submitted_id
from tests.conftest import SIMULATOR_SECRET, StartSimulator
from tests.processes import GatewayProcess, StartGatewayProcess
from tests.support import BOX, seconds_left_in_minute, within_one_minute

START = 1_000_000
IMAGINE = PRICE["mj_imagine"]
REQUESTS_PER_MINUTE = 300
FIRED = 450  # half as many again as the limit allows


async def _two_gateways(start: StartGatewayProcess) -> list[GatewayProcess]:
    return list(await asyncio.gather(start(), start()))


async def _fire(
    gateways: Sequence[GatewayProcess],
    keys: Sequence[str],
    count: int,
    method: str,
    path: str,
    body: Any = None,
) -> list[httpx.Response]:
    """``count`` requests at once, the n-th through gateway n mod 2 with key n mod len(keys)."""
    limits = httpx.Limits(max_connections=64)
    clients = [
        httpx.AsyncClient(base_url=g.base_url, timeout=30.0, limits=limits) for g in gateways
    ]
    try:
        return list(
            await asyncio.gather(
                *(
                    clients[n % len(clients)].request(
                        method,
                        path,
                        json=body if body is None else {**body, "prompt": f"{body['prompt']} {n}"},
                        headers={"Authorization": f"Bearer {keys[n % len(keys)]}"},
                    )
                    for n in range(count)
                )
            )
        )
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


async def _fire_in_one_minute(
    redis: aioredis.Redis, gateways: Sequence[GatewayProcess], keys: Sequence[str]
) -> list[httpx.Response]:
    await within_one_minute(redis, 10)
    before = await seconds_left_in_minute(redis)
    responses = await _fire(gateways, keys, FIRED, "GET", "/mj/task/list")
    assert await seconds_left_in_minute(redis) < before, "the burst crossed into the next minute"
    return responses


def _check_counted(responses: list[httpx.Response]) -> list[httpx.Response]:
    """The accepted ones, after checking that each count was seen once and every refusal is a
    429/23 with Retry-After and the limit's headers."""
    accepted = [r for r in responses if r.status_code == 200]
    for response in responses:
        assert response.headers["X-RateLimit-Limit"] == str(REQUESTS_PER_MINUTE)
        assert 1 <= int(response.headers["X-RateLimit-Reset"]) <= 60
        if response.status_code != 200:
            assert_error(response, 429, 23)
            assert response.headers["X-RateLimit-Remaining"] == "0"
            assert response.headers["Retry-After"] == response.headers["X-RateLimit-Reset"]
    remaining = sorted(int(r.headers["X-RateLimit-Remaining"]) for r in accepted)
    assert remaining == list(range(len(accepted)))
    return accepted


def _by_gateway(responses: list[httpx.Response], gateways: Sequence[GatewayProcess]) -> list[int]:
    return [
        sum(1 for r in responses if r.status_code == 200 and str(r.url).startswith(g.base_url))
        for g in gateways
    ]


async def test_a_keys_requests_a_minute_are_exact_across_two_processes(
    gateway_process_factory: StartGatewayProcess,
    db_pool: asyncpg.Pool,
    redis_client: aioredis.Redis,
) -> None:
    user_id = await admin.create_user(db_pool, "alice", START)
    key = (
        await admin.issue_key(
            db_pool, user_id, KeySettings(requests_per_minute=REQUESTS_PER_MINUTE)
        )
    ).key
    gateways = await _two_gateways(gateway_process_factory)

    responses = await _fire_in_one_minute(redis_client, gateways, [key])

    accepted = _check_counted(responses)
    print(f"key limit {REQUESTS_PER_MINUTE}: accepted {len(accepted)} of {FIRED},", end=" ")
    print(f"by process {_by_gateway(responses, gateways)}")
    assert len(accepted) == REQUESTS_PER_MINUTE
    assert all(_by_gateway(responses, gateways))


async def test_a_users_requests_a_minute_are_exact_across_two_keys_and_two_processes(
    gateway_process_factory: StartGatewayProcess,
    db_pool: asyncpg.Pool,
    redis_client: aioredis.Redis,
) -> None:
    user_id = await admin.create_user(db_pool, "alice", START)
    await admin.set_user_limits(
        db_pool, user_id, requests_per_minute=REQUESTS_PER_MINUTE, max_open_tasks=None
    )
    keys = [(await admin.issue_key(db_pool, user_id)).key for _ in range(2)]
    gateways = await _two_gateways(gateway_process_factory)

    responses = await _fire_in_one_minute(redis_client, gateways, keys)

    accepted = _check_counted(responses)
    print(f"user limit {REQUESTS_PER_MINUTE}: accepted {len(accepted)} of {FIRED},", end=" ")
    print(f"by process {_by_gateway(responses, gateways)}")
    assert len(accepted) == REQUESTS_PER_MINUTE
    assert all(_by_gateway(responses, gateways))


async def _imagines_upstream(simulator_url: str) -> int:
    async with httpx.AsyncClient() as http:
        stats = await http.get(
            f"{simulator_url}/sim/stats", headers={"mj-api-secret": SIMULATOR_SECRET}
        )
    count: int = stats.json()["requests"].get("submit/imagine", 0)
    return count


async def _submit_open_tasks(
    gateways: Sequence[GatewayProcess], keys: Sequence[str], cap: int
) -> list[str]:
    """Six times the cap in imagines at once through both processes; the ids of the accepted."""
    responses = await _fire(
        gateways, keys, 6 * cap, "POST", "/mj/submit/imagine", {"prompt": "a slow snail"}
    )
    accepted = [submitted_id(r) for r in responses if r.status_code == 200]
    for response in responses:
        if response.status_code != 200:
            assert_error(response, 429, 23)
            assert response.headers["Retry-After"] == "5"
    print(f"open-task cap {cap}: accepted {len(accepted)} of {6 * cap}")
    assert len(accepted) == cap, [r.text for r in responses]
    return accepted


async def test_a_keys_open_tasks_cap_is_exact_across_two_processes(
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
    db_pool: asyncpg.Pool,
) -> None:
    cap = 5
    simulator = await simulator_factory(speed_factor=5.0)
    await admin.add_channel(
        db_pool, BOX, "sim", simulator.base_url, admin.ChannelChanges(secret=SIMULATOR_SECRET)
    )
    user_id = await admin.create_user(db_pool, "alice", START)
    key = (await admin.issue_key(db_pool, user_id, KeySettings(max_open_tasks=cap))).key
    gateways = await _two_gateways(gateway_process_factory)

    accepted = await _submit_open_tasks(gateways, [key], cap)

    assert await db_pool.fetchval("SELECT balance_units FROM users WHERE id = $1", user_id) == (
        START - cap * IMAGINE
    )
    assert await db_pool.fetchval("SELECT count(*) FROM tasks WHERE user_id = $1", user_id) == cap
    assert await _imagines_upstream(simulator.base_url) == cap

    # A task cancelled through one process frees its slot at once for a submit through the other.
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=30.0) as http:
        cancelled = await http.post(
            f"{gateways[1].base_url}/mj/task/{accepted[0]}/cancel", json={}, headers=auth
        )
        assert cancelled.status_code == 200, cancelled.text
        again = await http.post(
            f"{gateways[0].base_url}/mj/submit/imagine", json={"prompt": "again"}, headers=auth
        )
        submitted_id(again)
        over = await http.post(
            f"{gateways[1].base_url}/mj/submit/imagine", json={"prompt": "over"}, headers=auth
        )
        assert_error(over, 429, 23)


async def test_a_users_open_tasks_cap_is_exact_across_two_keys_and_two_processes(
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
    db_pool: asyncpg.Pool,
) -> None:
    cap = 4
    simulator = await simulator_factory(speed_factor=5.0)
    await admin.add_channel(
        db_pool, BOX, "sim", simulator.base_url, admin.ChannelChanges(secret=SIMULATOR_SECRET)
    )
    user_id = await admin.create_user(db_pool, "alice", START)
    await admin.set_user_limits(db_pool, user_id, requests_per_minute=None, max_open_tasks=cap)
    keys = [(await admin.issue_key(db_pool, user_id)).key for _ in range(2)]
    gateways = await _two_gateways(gateway_process_factory)

    await _submit_open_tasks(gateways, keys, cap)

    assert await db_pool.fetchval("SELECT balance_units FROM users WHERE id = $1", user_id) == (
        START - cap * IMAGINE
    )
    assert await db_pool.fetchval("SELECT count(*) FROM tasks WHERE user_id = $1", user_id) == cap
    assert await _imagines_upstream(simulator.base_url) == cap


async def test_a_process_that_dies_mid_submit_holds_its_slot_only_until_the_sweep(
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
    db_pool: asyncpg.Pool,
) -> None:
    simulator = await simulator_factory()
    await admin.add_channel(
        db_pool, BOX, "sim", simulator.base_url, admin.ChannelChanges(secret=SIMULATOR_SECRET)
    )
    user_id = await admin.create_user(db_pool, "alice", START)
    key = (await admin.issue_key(db_pool, user_id, KeySettings(max_open_tasks=1))).key
    env = {
        "GATEWAY_RELAY__HOLD_DEADLINE_S": "3",
        "GATEWAY_UPSTREAM__MAX_ATTEMPTS": "1",
        "GATEWAY_UPSTREAM__CONNECT_TIMEOUT_S": "0.5",
        "GATEWAY_UPSTREAM__SUBMIT_TIMEOUT_S": "2",
    }
    doomed, survivor = await asyncio.gather(
        gateway_process_factory(**env), gateway_process_factory(**env)
    )
    auth = {"Authorization": f"Bearer {key}"}
    loop = asyncio.get_running_loop()

    async with httpx.AsyncClient(timeout=30.0) as http:
        in_flight = asyncio.create_task(
            http.post(
                f"{doomed.base_url}/mj/submit/imagine",
                json={"prompt": "a snail [[sim:slow=30]]"},
                headers=auth,
            )
        )
        deadline = loop.time() + 10
        while not await db_pool.fetchval(
            "SELECT EXISTS (SELECT FROM tasks WHERE user_id = $1 AND status = 'SUBMITTING')",
            user_id,
        ):
            assert loop.time() < deadline, "the submit never got as far as its hold"
            await asyncio.sleep(0.02)
        await doomed.kill()
        (lost,) = await asyncio.gather(in_flight, return_exceptions=True)
        assert isinstance(lost, httpx.HTTPError), lost

        url = f"{survivor.base_url}/mj/submit/imagine"
        held = await http.post(url, json={"prompt": "a fox"}, headers=auth)
        assert_error(held, 429, 23)  # the dead process's task still holds the slot
        deadline = loop.time() + 15
        while True:
            answer = await http.post(url, json={"prompt": "a fox"}, headers=auth)
            if answer.status_code == 200:
                break
            assert_error(answer, 429, 23)
            assert loop.time() < deadline, "the dead process's slot was never freed"
            await asyncio.sleep(0.2)
        submitted_id(answer)
    # The swept hold was released (no channel claimed the task): only the new task is paid.
    balance = await db_pool.fetchval("SELECT balance_units FROM users WHERE id = $1", user_id)
    assert balance == START - IMAGINE
