"""Holds under real concurrency: many submits at once against one balance never overdraw it."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from gateway import admin
from gateway.billing.reconciliation import reconcile
from gateway.simulator import RunningSimulator
from tests.conftest import SIMULATOR_SECRET, StartGateway, StartSimulator
from tests.processes import StartGatewayProcess
from tests.support import BOX

IMAGINE_UNITS = 100_000


async def test_200_submits_against_a_balance_for_37(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    simulator: RunningSimulator = await simulator_factory(accounts=20, task_timeout_s=5000)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=37 * IMAGINE_UNITS)

    responses = await asyncio.gather(
        *(client.post("/mj/submit/imagine", {"prompt": f"fox {n}"}) for n in range(200))
    )

    accepted = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 403]
    assert len(accepted) == 37
    assert len(refused) == 163
    assert all(r.json()["code"] == 1 for r in accepted)
    assert all(r.json()["code"] == 25 for r in refused)
    assert await client.balance() == 0
    pool = gateway.services.pool
    ledger_sum = await pool.fetchval(
        "SELECT sum(amount_units) FROM ledger WHERE user_id = $1", client.user_id
    )
    assert ledger_sum == 0
    charged_tasks = await pool.fetchval(
        "SELECT count(*) FROM tasks t JOIN holds h ON h.task_id = t.id"
        " WHERE t.user_id = $1 AND h.status = 'SETTLED'",
        client.user_id,
    )
    assert charged_tasks == 37
    stats = (
        await gateway.http.get(
            f"{simulator.base_url}/sim/stats", headers={"mj-api-secret": "sim-test-secret"}
        )
    ).json()
    assert stats["requests"]["submit/imagine"] == 37


async def test_a_key_limit_holds_under_concurrency(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory()
    simulator = await simulator_factory(accounts=20, task_timeout_s=5000)
    await gateway.add_channel(simulator)
    user_id = await gateway.create_user("bob", 100 * IMAGINE_UNITS)
    key = await gateway.issue_key(user_id, quota_units=12 * IMAGINE_UNITS)
    headers = {"Authorization": f"Bearer {key}"}

    responses = await asyncio.gather(
        *(
            gateway.http.post("/mj/submit/imagine", json={"prompt": f"owl {n}"}, headers=headers)
            for n in range(60)
        )
    )

    assert sorted(r.status_code for r in responses) == [200] * 12 + [403] * 48
    assert await gateway.balance(user_id) == 88 * IMAGINE_UNITS
    quota = await gateway.services.pool.fetchval(
        "SELECT quota_remaining_units FROM api_keys WHERE user_id = $1", user_id
    )
    assert quota == 0


async def test_200_submits_through_two_gateway_processes_against_a_balance_for_37(
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
    db_pool: asyncpg.Pool,
) -> None:
    simulator = await simulator_factory(accounts=20, task_timeout_s=5000)
    await admin.add_channel(
        db_pool, BOX, "sim", simulator.base_url, admin.ChannelChanges(secret=SIMULATOR_SECRET)
    )
    user_id = await admin.create_user(db_pool, "ivy", 37 * IMAGINE_UNITS)
    key = (await admin.issue_key(db_pool, user_id)).key
    first, second = await asyncio.gather(gateway_process_factory(), gateway_process_factory())
    headers = {"Authorization": f"Bearer {key}"}

    async with (
        httpx.AsyncClient(base_url=first.base_url, timeout=30) as a,
        httpx.AsyncClient(base_url=second.base_url, timeout=30) as b,
    ):
        responses = await asyncio.gather(
            *(
                (a if n % 2 else b).post(
                    "/mj/submit/imagine", json={"prompt": f"owl {n}"}, headers=headers
                )
                for n in range(200)
            )
        )

    codes = [r.json()["code"] for r in responses]
    assert codes.count(1) == 37
    assert codes.count(25) == 163
    assert {r.status_code for r in responses} == {200, 403}
    balance = await db_pool.fetchval("SELECT balance_units FROM users WHERE id = $1", user_id)
    assert balance == 0
    settled = await db_pool.fetchval(
        "SELECT count(*) FROM holds WHERE user_id = $1 AND status = 'SETTLED'", user_id
    )
    assert settled == 37
    assert (await reconcile(db_pool, hold_grace_s=0)).ok
