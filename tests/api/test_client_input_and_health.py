"""What a client's own input causes never counts against a channel's health; uploads are
bounded and priced per image; a cancel answers what happened to the task."""

from __future__ import annotations

import asyncio

from gateway.billing.reconciliation import reconcile
from tests.api.helpers import (
    BLUE,
    IMAGINE_PRICE,
    RED,
    assert_error,
    metric_value,
    scrape,
    start_sim,
    submitted_id,
)
from tests.conftest import Client, Gateway, StartGateway, StartSimulator

START = 100 * IMAGINE_PRICE
UPLOAD_PRICE = 50_000
ONE_STRIKE = {"failures_to_cool": 1}


async def _gateway(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, **gateway: dict[str, object]
) -> tuple[Gateway, Client]:
    gw = await gateway_factory(**gateway)
    await gw.add_channel(await start_sim(simulator_factory))
    return gw, await gw.client_with_key(balance_units=START)


async def _cooling(gateway: Gateway) -> set[int]:
    return set(await gateway.services.cooldowns.cooling())


async def test_an_account_filter_naming_no_account_rests_no_channel_and_costs_nothing(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client = await _gateway(gateway_factory, simulator_factory)
    for _ in range(5):  # one request every few seconds kept a channel down for everyone
        answer = await client.post(
            "/mj/submit/imagine", {"prompt": "a cat", "accountFilter": {"instanceId": "no-such"}}
        )
        assert "accountFilter" in assert_error(answer, 400, 21)["description"]
    assert await _cooling(gateway) == set()

    other = await gateway.client_with_key(balance_units=START, name="bob")
    submitted_id(await other.post("/mj/submit/imagine", {"prompt": "a dog"}))
    assert await client.balance() == START


async def test_what_the_prompt_causes_rests_no_channel(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client = await _gateway(gateway_factory, simulator_factory, upstream=ONE_STRIKE)
    for _ in range(3):
        banned = await client.post("/mj/submit/imagine", {"prompt": "a bannedword cat"})
        assert assert_error(banned, 400, 21)["properties"] == {"bannedWord": "bannedword"}
    assert await _cooling(gateway) == set()
    assert await client.balance() == START
    submitted_id(await client.post("/mj/submit/imagine", {"prompt": "a dog"}))


async def test_successful_uploads_count_as_successes(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client = await _gateway(gateway_factory, simulator_factory)
    before = metric_value(
        await scrape(gateway), "gateway_upstream_requests_total", outcome="accepted"
    )
    for _ in range(4):  # three were enough to rest the channel for everyone
        answer = await client.post("/mj/submit/upload-discord-images", {"base64Array": [RED]})
        assert answer.json()["code"] == 1, answer.text
    after = metric_value(
        await scrape(gateway), "gateway_upstream_requests_total", outcome="accepted"
    )
    assert after - before == 4
    assert await _cooling(gateway) == set()
    submitted_id(await client.post("/mj/submit/imagine", {"prompt": "a dog"}))


async def test_uploads_are_bounded_and_priced_per_image(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, client = await _gateway(gateway_factory, simulator_factory)
    too_many = await client.post(
        "/mj/submit/upload-discord-images", {"base64Array": [RED, BLUE] * 1000}
    )
    assert "base64Array" in assert_error(too_many, 400, 21)["description"]
    assert await client.balance() == START

    three = await client.post("/mj/submit/upload-discord-images", {"base64Array": [RED, BLUE, RED]})
    assert len(three.json()["result"]) == 3, three.text
    assert await client.balance() == START - 3 * UPLOAD_PRICE
    assert (await reconcile(gateway.services.pool, hold_grace_s=0)).ok


async def test_a_cancel_racing_the_tasks_end_says_what_happened(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    """With callbacks, the upstream's CANCEL (which the cancel itself caused) often arrives
    and is applied before the cancel ends the task: the cancel is still a success."""
    gateway = await gateway_factory(callbacks=True)
    await gateway.add_channel(await start_sim(simulator_factory, speed_factor=20.0))
    client = await gateway.client_with_key(balance_units=START)
    ids = [
        submitted_id(await client.post("/mj/submit/imagine", {"prompt": f"a moving cat {n}"}))
        for n in range(10)
    ]
    await asyncio.sleep(0.3)  # under way upstream

    answers = await asyncio.gather(*(client.post(f"/mj/task/{i}/cancel", {}) for i in ids))

    for task_id, answer in zip(ids, answers, strict=True):
        task = await client.wait_for(task_id, {"SUCCESS", "FAILURE", "CANCEL"})
        if answer.status_code == 200:
            assert task["status"] == "CANCEL", (answer.text, task)
        else:
            assert task["status"] != "CANCEL", (answer.text, task)
            assert task["status"] in answer.json()["description"], answer.text
    cancelled = sum(answer.status_code == 200 for answer in answers)
    assert cancelled > 0
    pool = gateway.services.pool
    refunds = await pool.fetchval("SELECT count(*) FROM ledger WHERE kind = 'REFUND'")
    assert refunds == cancelled
    assert await client.balance() == START - (10 - cancelled) * IMAGINE_PRICE
    assert (await reconcile(pool, hold_grace_s=0)).ok
