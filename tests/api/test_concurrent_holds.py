"""Holds under real concurrency: many submits at once against one balance never overdraw it."""

from __future__ import annotations

import asyncio

from gateway.simulator import RunningSimulator
from tests.conftest import StartGateway, StartSimulator

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
