"""The pace of polling: a round spreads its list calls over the poll interval, a light round asks
in smaller batches, and the next round starts an interval after the last one started."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from gateway.simulator import RunningSimulator
from gateway.tasks.leader import Job, Leader
from gateway.tasks.poller import (
    CALLS_PER_ROUND,
    SMALLEST_BATCH,
    SPREAD_SHARE,
    Poller,
    RoundStats,
    batch_size,
)
from tests.api.helpers import sim_requests
from tests.conftest import Gateway, StartGateway, StartSimulator

START_UNITS = 1_000_000


async def _stalled_tasks(
    gateway_factory: StartGateway, simulator_factory: StartSimulator, count: int
) -> tuple[Gateway, RunningSimulator]:
    """A gateway whose own poller is idle, in front of a simulator holding ``count`` imagines
    that never end."""
    gateway = await gateway_factory(relay={"poll_interval_s": 3600.0})
    simulator = await simulator_factory(task_timeout_s=5000, core_size=50)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=40 * START_UNITS)
    for n in range(count):
        answer = await client.post("/mj/submit/imagine", {"prompt": f"a heron {n} [[sim:stall]]"})
        assert answer.json()["code"] == 1, answer.text
    return gateway, simulator


async def _round(
    gateway: Gateway, simulator: RunningSimulator, *, batch_size: int, interval_s: float = 0.0
) -> tuple[RoundStats, int]:
    """One round of a poller of the gateway's services: its stats and its list calls."""
    services = gateway.services
    poller = Poller(
        services.pool,
        services.channels,
        services.upstream,
        services.cooldowns,
        batch_size=batch_size,
        interval_s=interval_s,
    )
    before = await sim_requests(gateway.http, simulator, "task/list-by-condition")
    stats = await poller.run_once()
    after = await sim_requests(gateway.http, simulator, "task/list-by-condition")
    return stats, after - before


async def test_a_round_spreads_its_list_calls_over_the_interval(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, simulator = await _stalled_tasks(gateway_factory, simulator_factory, 4)
    interval_s = 0.8

    started = time.monotonic()
    stats, calls = await _round(gateway, simulator, batch_size=1, interval_s=interval_s)
    took_s = time.monotonic() - started

    assert stats.asked == 4
    assert stats.channel_errors == 0
    assert calls == 4
    # One call a batch, the last one no sooner than 3/4 of the spread after the round began;
    # back to back, the four take a few milliseconds.
    assert took_s >= interval_s * SPREAD_SHARE * 3 / 4


async def test_a_light_round_asks_in_batches_smaller_than_the_largest(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway, simulator = await _stalled_tasks(
        gateway_factory, simulator_factory, SMALLEST_BATCH + 5
    )
    calls_by_largest = {}
    for largest in (100, 5):
        stats, calls_by_largest[largest] = await _round(gateway, simulator, batch_size=largest)
        assert (stats.asked, stats.channel_errors) == (SMALLEST_BATCH + 5, 0)

    # A batch of the smallest size and one of 5; never more than the largest.
    assert calls_by_largest == {100: 2, 5: (SMALLEST_BATCH + 5) // 5}


@pytest.mark.parametrize(
    ("tasks", "largest", "size"),
    [
        (1, 100, SMALLEST_BATCH),
        (800, 100, 800 // CALLS_PER_ROUND),  # a light round: more, smaller calls
        (801, 100, 800 // CALLS_PER_ROUND + 1),
        (50_000, 100, 100),  # a heavy one: full batches
        (700, 10, 10),
    ],
)
def test_a_rounds_batch_size_grows_with_its_tasks(tasks: int, largest: int, size: int) -> None:
    assert batch_size(tasks, largest) == size


async def test_a_job_counted_from_its_start_does_not_add_its_run_to_the_interval(
    database_url: str,
) -> None:
    starts: dict[str, list[float]] = {"from start": [], "paused": []}

    def job(name: str) -> Job:
        async def run() -> None:
            starts[name].append(time.monotonic())
            await asyncio.sleep(0.2)

        return Job(name, 0.3, run, from_start=name == "from start")

    leader = Leader(database_url, [job("from start"), job("paused")], retry_s=0.05)
    leading = asyncio.create_task(leader.run())
    try:
        for _ in range(200):
            await asyncio.sleep(0.05)
            if len(starts["from start"]) >= 4 and len(starts["paused"]) >= 3:
                break
    finally:
        leading.cancel()
        await asyncio.gather(leading, return_exceptions=True)

    def gaps(name: str) -> list[float]:
        return [later - earlier for earlier, later in itertools.pairwise(starts[name])]

    assert len(gaps("from start")) >= 3
    assert len(gaps("paused")) >= 2
    # Start to start: 0.3 s (to the loop clock's millisecond). With the pause after each 0.2 s
    # run: 0.5 s at least.
    assert all(0.29 <= gap < 0.48 for gap in gaps("from start")), gaps("from start")
    assert all(gap >= 0.49 for gap in gaps("paused")), gaps("paused")
