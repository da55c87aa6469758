"""The pace of polling: a round spreads its list calls over the poll interval, and the next round
starts an interval after the last one started."""

from __future__ import annotations

import asyncio
import itertools
import time

from gateway.tasks.leader import Job, Leader
from gateway.tasks.poller import SPREAD_SHARE, Poller
from tests.api.helpers import sim_requests
from tests.conftest import StartGateway, StartSimulator

START_UNITS = 1_000_000


async def test_a_round_spreads_its_list_calls_over_the_interval(
    gateway_factory: StartGateway, simulator_factory: StartSimulator
) -> None:
    gateway = await gateway_factory(relay={"poll_interval_s": 3600.0})
    simulator = await simulator_factory(task_timeout_s=5000)
    await gateway.add_channel(simulator)
    client = await gateway.client_with_key(balance_units=START_UNITS)
    for n in range(4):
        answer = await client.post("/mj/submit/imagine", {"prompt": f"a heron {n} [[sim:stall]]"})
        assert answer.json()["code"] == 1, answer.text
    services = gateway.services
    interval_s = 0.8
    poller = Poller(
        services.pool,
        services.channels,
        services.upstream,
        services.cooldowns,
        batch_size=1,
        interval_s=interval_s,
    )
    calls_before = await sim_requests(gateway.http, simulator, "task/list-by-condition")

    started = time.monotonic()
    stats = await poller.run_once()
    took_s = time.monotonic() - started

    assert stats.asked == 4
    assert stats.channel_errors == 0
    calls = await sim_requests(gateway.http, simulator, "task/list-by-condition")
    assert calls - calls_before == 4
    # One call a batch, the last one no sooner than 3/4 of the spread after the round began;
    # back to back, the four take a few milliseconds.
    assert took_s >= interval_s * SPREAD_SHARE * 3 / 4


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
