"""``gateway serve --workers 2`` under steady load: a worker killed with SIGKILL is started
again, the gateway answers all along, and no money is lost or charged twice."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
from pathlib import Path

import asyncpg
import httpx
import psutil

from tests.api.helpers import metric_value, roomy_channel_and_key
from tests.conftest import StartSimulator
from tests.processes import StartGatewayProcess, reconcile
from tests.support import until

IMAGINE_UNITS = 100_000


def _workers(parent_pid: int) -> set[int]:
    """The pids of the gateway's live worker processes (spawn's resource tracker left out)."""
    found = set()
    for child in psutil.Process(parent_pid).children():
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(
                child.cmdline()
            ):
                found.add(child.pid)
    return found


async def test_a_killed_worker_comes_back_and_the_gateway_answers_all_along(
    gateway_process_factory: StartGatewayProcess,
    simulator_factory: StartSimulator,
    db_pool: asyncpg.Pool,
    database_url: str,
    tmp_path: Path,
) -> None:
    key = await roomy_channel_and_key(db_pool, simulator_factory, "steady")
    process = await gateway_process_factory(workers=2)
    assert process.process is not None
    parent = process.process.pid
    await until(lambda: len(_workers(parent)) == 2, timeout_s=30)
    before = _workers(parent)

    answered: list[float] = []
    failed: list[float] = []
    stop = asyncio.Event()

    async def steady() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=process.base_url, timeout=10.0) as http:
            while not stop.is_set():
                try:
                    answer = await http.post(
                        "/mj/submit/imagine", json={"prompt": "a steady fox"}, headers=headers
                    )
                    assert answer.status_code == 200, answer.text
                    fetched = await http.get(
                        f"/mj/task/{answer.json()['result']}/fetch", headers=headers
                    )
                    assert fetched.status_code == 200, fetched.text
                    answered.append(time.monotonic())
                except httpx.TransportError:  # a connection the killed worker held
                    failed.append(time.monotonic())

    load = [asyncio.create_task(steady()) for _ in range(8)]
    await asyncio.sleep(1.0)
    victim = min(before)
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    await until(lambda: len(_workers(parent)) == 2 and victim not in _workers(parent), timeout_s=30)
    back_at = time.monotonic()
    await asyncio.sleep(1.0)
    stopped_at = time.monotonic()
    stop.set()
    await asyncio.gather(*load)

    # The other worker answered all along: the new one is counted as soon as its process exists,
    # so a request may well not end between the kill and that; what matters is no pause.
    moments = [killed_at, *sorted(t for t in answered if killed_at < t < stopped_at), stopped_at]
    longest_wait_s = max(b - a for a, b in itertools.pairwise(moments))
    assert longest_wait_s < 2.0, longest_wait_s
    assert sum(t > back_at for t in answered) > 0
    assert len(failed) <= 8, len(failed)  # at most the requests in flight on the victim
    assert process.process.returncode is None  # the whole never stopped
    log = process.log_path.read_text(errors="replace")
    assert '"worker_died"' in log
    async with httpx.AsyncClient(base_url=process.base_url) as http:
        text = (await http.get("/metrics")).text
    assert metric_value(text, "gateway_worker_restarts_total") == 1

    holds = await db_pool.fetchval(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM ledger WHERE kind = 'HOLD'"
        " GROUP BY task_id) per_task"
    )
    assert holds == 1  # no task charged twice
    with contextlib.suppress(Exception):
        await process.stop()
    exit_code, report = await reconcile(database_url, tmp_path)
    assert exit_code == 0, report
