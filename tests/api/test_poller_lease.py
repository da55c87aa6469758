"""One poller across gateway processes: exactly one holds the lease, and when it dies another
takes over within seconds and tasks keep moving."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import httpx

from gateway import admin
from tests.conftest import SIMULATOR_SECRET, StartSimulator
from tests.processes import GatewayProcess, StartGatewayProcess
from tests.support import BOX

TAKEOVER_LIMIT_S = 10.0
POLLING = {"GATEWAY_RELAY__POLL_INTERVAL_S": "0.2"}
WINDOW_S = 3.0


async def _leaders(pool: asyncpg.Pool) -> list[int]:
    """Process ids holding the poller's lease (its advisory lock) now."""
    rows = await pool.fetch(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted"
        " AND a.application_name LIKE 'gateway-poller:%' AND a.datname = current_database()"
    )
    return [int(row["application_name"].split(":")[1]) for row in rows]


def _owner(pid: int, gateways: list[GatewayProcess]) -> GatewayProcess:
    group = os.getpgid(pid)
    (owner,) = [g for g in gateways if g.process is not None and g.process.pid == group]
    return owner


async def _submit_and_finish(gateway: GatewayProcess, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as http:
        answer = await http.post("/mj/submit/imagine", json={"prompt": "a gull"}, headers=headers)
        task_id = answer.json()["result"]
        for _ in range(300):
            task = (await http.get(f"/mj/task/{task_id}/fetch", headers=headers)).json()
            if task["status"] == "SUCCESS":
                return str(task_id)
            await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never reached SUCCESS")


async def _list_calls(http: httpx.AsyncClient, simulator_url: str) -> int:
    stats = await http.get(
        f"{simulator_url}/sim/stats", headers={"mj-api-secret": SIMULATOR_SECRET}
    )
    calls: int = stats.json()["requests"].get("task/list-by-condition", 0)
    return calls


async def _rounds_asked_once(gateway: GatewayProcess, slow_url: str, key: str) -> None:
    """With one task open on the slow channel, that channel is asked once per poll round: no
    more often than one poller alone can ask (rounds are ``interval`` apart)."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        relax = f"{gateway.base_url}/mj-relax/mj/submit/imagine"
        answer = await http.post(relax, json={"prompt": "a slow gull"}, headers=headers)
        assert answer.json()["code"] == 1, answer.text
        await asyncio.sleep(0.5)
        before = await _list_calls(http, slow_url)
        await asyncio.sleep(WINDOW_S)
        calls = await _list_calls(http, slow_url) - before
    interval_s = float(POLLING["GATEWAY_RELAY__POLL_INTERVAL_S"])
    assert 0 < calls <= WINDOW_S / interval_s + 2


async def test_one_process_polls_and_another_takes_over_when_it_dies(
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
    db_pool: asyncpg.Pool,
) -> None:
    simulator = await simulator_factory(speed_factor=300.0)
    slow = await simulator_factory(speed_factor=1.0, task_timeout_s=100_000)
    await admin.add_channel(
        db_pool,
        BOX,
        "sim",
        simulator.base_url,
        admin.ChannelChanges(secret=SIMULATOR_SECRET, modes=["FAST"]),
    )
    await admin.add_channel(
        db_pool,
        BOX,
        "slow",
        slow.base_url,
        admin.ChannelChanges(secret=SIMULATOR_SECRET, modes=["RELAX"]),
    )
    user_id = await admin.create_user(db_pool, "lena", 10_000_000)
    key = (await admin.issue_key(db_pool, user_id)).key
    gateways = [await gateway_process_factory(**POLLING), await gateway_process_factory(**POLLING)]

    for _ in range(20):  # sampled over a few rounds: never two leaders, soon exactly one
        leaders = await _leaders(db_pool)
        assert len(leaders) <= 1
        await asyncio.sleep(0.1)
    assert len(leaders) == 1
    leader = _owner(leaders[0], gateways)
    survivor = next(g for g in gateways if g is not leader)
    await _submit_and_finish(survivor, key)  # tasks move while the other one polls
    await _rounds_asked_once(survivor, slow.base_url, key)

    await leader.kill()
    started = asyncio.get_running_loop().time()
    dead = leaders[0]
    while (leaders := await _leaders(db_pool)) in ([], [dead]):
        assert asyncio.get_running_loop().time() - started < TAKEOVER_LIMIT_S, "no takeover"
        await asyncio.sleep(0.05)

    assert _owner(leaders[0], gateways) is survivor
    await _submit_and_finish(survivor, key)
