"""Speed modes: from path prefix, accountFilter or prompt flag; priced and forwarded upstream."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.simulator import RunningSimulator
from gateway.simulator.protocol import Mode
from tests.api.helpers import PRICE, RED, START_BALANCE, sim_task, start, submit, succeed
from tests.conftest import StartGateway

IMAGINE = PRICE["mj_imagine"]
DESCRIBE = PRICE["mj_describe"]


@pytest.mark.parametrize(
    ("prefix", "mode", "price"),
    [
        ("/mj", Mode.FAST, IMAGINE),
        ("/mj-fast/mj", Mode.FAST, IMAGINE),
        ("/mj-relax/mj", Mode.RELAX, IMAGINE // 2),
        ("/mj-turbo/mj", Mode.TURBO, IMAGINE * 2),
    ],
)
async def test_path_prefix_sets_price_and_upstream_mode(
    gateway_factory: StartGateway,
    simulator: RunningSimulator,
    prefix: str,
    mode: Mode,
    price: int,
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    task_id = await submit(client, f"{prefix}/submit/imagine", {"prompt": "a steam locomotive"})
    assert await client.balance() == START_BALANCE - price
    task = (await client.get(f"{prefix}/task/{task_id}/fetch")).json()
    assert task["id"] == task_id
    await succeed(client, task_id)
    assert (await sim_task(gateway, simulator, task_id)).mode is mode
    assert await client.balance() == START_BALANCE - price


@pytest.mark.parametrize(
    ("prefix", "extra", "mode", "price"),
    [
        ("/mj", {"accountFilter": {"modes": ["RELAX"]}}, Mode.RELAX, DESCRIBE // 2),
        ("/mj", {"accountFilter": {"modes": ["TURBO"]}}, Mode.TURBO, DESCRIBE * 2),
        ("/mj-fast/mj", {"accountFilter": {"modes": ["TURBO"]}}, Mode.FAST, DESCRIBE),
        ("/mj-turbo/mj", {}, Mode.TURBO, DESCRIBE * 2),
    ],
)
async def test_describe_mode_from_prefix_then_account_filter(
    gateway_factory: StartGateway,
    simulator: RunningSimulator,
    prefix: str,
    extra: dict[str, Any],
    mode: Mode,
    price: int,
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    body = {"base64": RED, **extra}
    task_id = await submit(client, f"{prefix}/submit/describe", body)
    assert await client.balance() == START_BALANCE - price
    await succeed(client, task_id)
    assert (await sim_task(gateway, simulator, task_id)).mode is mode
    assert await client.balance() == START_BALANCE - price


@pytest.mark.parametrize(
    ("prompt", "mode", "price"),
    [
        ("a mountain lake --relax", Mode.RELAX, IMAGINE // 2),
        ("a mountain lake --turbo", Mode.TURBO, IMAGINE * 2),
        ("a mountain lake --fast", Mode.FAST, IMAGINE),
    ],
)
async def test_prompt_flag_sets_mode(
    gateway_factory: StartGateway,
    simulator: RunningSimulator,
    prompt: str,
    mode: Mode,
    price: int,
) -> None:
    gateway, client = await start(gateway_factory, simulator)
    task_id = await submit(client, "/mj/submit/imagine", {"prompt": prompt})
    assert await client.balance() == START_BALANCE - price
    await succeed(client, task_id)
    assert (await sim_task(gateway, simulator, task_id)).mode is mode
    assert await client.balance() == START_BALANCE - price
