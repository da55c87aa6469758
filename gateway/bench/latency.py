"""``gateway bench --latency``: how long after the upstream finishes a task the gateway's fetch
shows SUCCESS, with upstream callbacks and with the poller alone.

A simulator slow enough that tasks finish while watched, and the gateway started twice on one
throw-away database: once asking its channel for callbacks, once without. Each time ``--tasks``
imagines are submitted, evenly over one poll interval, and each is fetched every 10 ms until it
shows SUCCESS; the latency is that moment less the task's ``finishTime``, which the gateway copies
from upstream. Spread so, the tasks end at every point of a poll round: submitted at once, they
would all end at the one point of it that the run happened to hit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from gateway import eventloop
from gateway.bench.stack import (
    bench_database,
    child,
    free_ports,
    gateway_env,
    new_secret,
    quiet_env,
    seed,
    settings_env,
    simulator_env,
    wait_all_ready,
)
from gateway.config import Settings
from gateway.errors import StartupError
from gateway.storage.servers import Servers

LATENCY_SIM_SPEED = 10.0  # an imagine takes 4-7 s: tasks end in another order than submitted
LATENCY_WATCH_S = 0.01


async def _watch(
    http: aiohttp.ClientSession, base_url: str, key: str, tasks: int, spread_s: float
) -> list[float]:
    """Submit ``tasks`` imagines evenly over ``spread_s`` and watch each until SUCCESS: for
    each, the seconds between the upstream's finishTime and the first fetch that showed
    SUCCESS."""
    headers = {"Authorization": f"Bearer {key}"}

    async def one(n: int) -> float:
        await asyncio.sleep(spread_s * n / tasks)
        async with http.post(
            f"{base_url}/mj/submit/imagine", json={"prompt": f"a buoy {n}"}, headers=headers
        ) as response:
            task_id = (await response.json())["result"]
        while True:
            async with http.get(f"{base_url}/mj/task/{task_id}/fetch", headers=headers) as got:
                task = await got.json()
            if task["status"] == "SUCCESS":
                finished_s: float = task["finishTime"] / 1000
                return time.time() - finished_s
            if task["status"] == "FAILURE":
                raise StartupError(f"task {task_id} failed: {task['failReason']}")
            await asyncio.sleep(LATENCY_WATCH_S)

    return sorted(await asyncio.gather(*(one(n) for n in range(tasks))))


def _latency(
    settings: Settings, servers: Servers, database_url: str, prefix: str, args: Any
) -> dict[str, list[float]]:
    sim_port, gw_port = free_ports(2)
    sim_url, gw_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{gw_port}"
    secret = new_secret()
    key = eventloop.run(seed(settings, database_url, sim_url, secret))
    common = quiet_env()
    urls = {"simulator": sim_url, "gateway": gw_url}
    results: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix=f"{prefix}_") as folder,
        contextlib.ExitStack() as stack,
    ):
        simulate = ["simulate", "--port", sim_port, "--speed", str(LATENCY_SIM_SPEED)]
        sim_log = Path(folder, "simulator.log")
        children = {
            "simulator": stack.enter_context(
                child("simulator", simulate, common | simulator_env(secret), sim_log)
            )
        }
        for name, extra in (
            ("with callbacks", settings_env("UPSTREAM__", CALLBACK_BASE_URL=gw_url)),
            ("polling only", {}),
        ):
            env = common | gateway_env(folder, gw_port, database_url, servers, prefix) | extra
            with child("gateway", ["serve"], env, Path(folder, f"gateway {name}.log")) as gateway:
                children["gateway"] = gateway
                eventloop.run(wait_all_ready(children, urls, secret, args))

                async def measure() -> list[float]:
                    async with aiohttp.ClientSession() as http:
                        spread_s = settings.relay.poll_interval_s
                        return await _watch(http, gw_url, key, args.tasks, spread_s)

                results[name] = eventloop.run(measure())
    return results


def run_latency(settings: Settings, args: argparse.Namespace) -> None:
    """Print the upstream-SUCCESS-to-gateway-fetch latency with callbacks and with polling."""
    name = f"gw_latency_{os.getpid()}"
    with bench_database(settings, name) as (servers, database_url):
        results = _latency(settings, servers, database_url, name, args)
    interval = settings.relay.poll_interval_s
    print(
        f"\nupstream SUCCESS -> gateway fetch shows SUCCESS, {args.tasks} imagines each, "
        f"submitted over one poll interval ({interval:g} s), simulator x{LATENCY_SIM_SPEED:g},"
        f" watched every {LATENCY_WATCH_S * 1000:g} ms\n\n"
        f"{'':<16}{'p50 ms':>9}{'p90 ms':>9}{'max ms':>9}"
    )
    for label, seconds in results.items():
        p50, p90 = seconds[len(seconds) // 2], seconds[len(seconds) * 9 // 10]
        print(f"{label:<16}{p50 * 1000:>9.0f}{p90 * 1000:>9.0f}{seconds[-1] * 1000:>9.0f}")
